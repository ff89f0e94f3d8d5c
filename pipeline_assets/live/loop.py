"""The live loop: one process, cycles until stopped (cycle.py does one; this decides when and how often).

- dbt is parsed once, at start (warm_dbt.py).
- Every cycle: consume and build (cycle.py); `cycles()` then yields the cycle's materializations
  (report.py) for its caller to report, and the cycle's timings go to `<data dir>/live/cycles.jsonl`.
- After each cycle, one slice of background work (background.py): an insights model (a pass at
  most every REDSET_LIVE_INSIGHTS_SECONDS) or one file's dbt tests (a pass every
  REDSET_LIVE_TEST_SECONDS once models were rebuilt, verify.py), their evaluations reported to the
  instance as asset checks. A batch on Kafka waits behind one slice at most, not a whole pass.
- While it runs it serves Prometheus metrics on 127.0.0.1:REDSET_METRICS_PORT (monitoring/):
  the pipeline's collector and each cycle's stage timings; a port in use is one warning.
- Between cycles it pauses REDSET_LIVE_POLL_SECONDS, holding no lock: batch writers take turns.
- A failed cycle raises one `live_cycle_failed` alert per episode and backs off (doubling, at most
  a minute); the loop goes on. An interrupt (KeyboardInterrupt, run termination) is not caught.
- It ends when `stop` is set (stopping.py: the first SIGINT/SIGTERM), when `keep_going()` gives a
  reason to stop (live_mode_job: its sensor was switched off), or after `max_cycles`.

A generator, so that a Dagster op can yield the events as they come: events an op logs with
`context.log_event` are only stored when the op yields or returns, which a loop never does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.durable import rotate_if_larger
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.background import Background, SliceResult
from pipeline_assets.live.consume import LiveConsumer
from pipeline_assets.live.cycle import CycleResult, run_cycle
from pipeline_assets.live.report import cycle_events, slice_events
from pipeline_assets.live.state import Owed, live_dir
from pipeline_assets.live.switch import one_live_loop
from pipeline_assets.live.warm_dbt import WarmDbt
from pipeline_assets.live.metrics import LiveMetrics, NoMetrics, serving_live_metrics

MAX_BACKOFF_S = 60.0

_logger = logging.getLogger(__name__)


@dataclass
class LoopSummary:
    session: str
    cycles: int = 0
    messages: int = 0
    failed_cycles: int = 0
    slices: int = 0
    passes: dict[str, int] = field(default_factory=dict)  # background passes ended well, per kind
    stopped_because: str = ""


class LiveLoop:
    """`cycles()` runs live mode, yielding each cycle's materializations; `summary` says what it did.
    `where` names this loop (a run id, `redset live`) for whoever finds it running; `instance`
    receives the dbt tests' check evaluations."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        stop: threading.Event,
        *,
        where: str,
        log: Any = _logger,
        kafka: KafkaResource | None = None,
        keep_going: Callable[[], str | None] = lambda: None,
        max_cycles: int | None = None,
        new_generation: bool = False,
    ) -> None:
        self.instance, self.stop, self.where, self.log = instance, stop, where, log
        self.kafka, self.keep_going, self.max_cycles = kafka, keep_going, max_cycles
        self.summary = LoopSummary(session=uuid.uuid4().hex[:8])
        self.new_generation = new_generation  # LiveConsumer's, for its first take

    def cycles(self) -> Iterator[list[dg.AssetMaterialization]]:
        kafka = self.kafka or KafkaResource()
        with one_live_loop(self.where), serving_live_metrics(self.instance, kafka.client_config(), self.log) as metrics:
            started = time.monotonic()
            dbt = WarmDbt()
            dbt.manifest  # noqa: B018  (the one parse, before the first cycle)
            self.log.info(f"live mode {self.summary.session} ({self.where}): dbt parsed in {time.monotonic() - started:.1f}s")
            # The dump's own lines go to Python's log: in a run, each would be a stored event per cycle.
            yield from self._cycles(dbt, LiveConsumer(kafka, new_generation=self.new_generation), metrics)
        s = self.summary
        self.log.info(f"live mode {s.session} stopped ({s.stopped_because}) after {s.cycles} cycles")

    def _stop_reason(self) -> str | None:
        if self.stop.is_set():
            return "stop requested"
        if self.max_cycles is not None and self.summary.cycles >= self.max_cycles:
            return f"{self.max_cycles} cycles done"
        return self.keep_going()

    def _cycles(self, dbt: WarmDbt, consumer: LiveConsumer, metrics: LiveMetrics | NoMetrics) -> Iterator[list[dg.AssetMaterialization]]:
        owed = Owed.load()
        background = Background(dbt, owed, self.log)
        self.summary.passes = background.passes
        failing = 0
        while (reason := self._stop_reason()) is None:
            self.summary.cycles += 1
            errors: list[str] = []
            try:
                cycle = run_cycle(self.summary.session, self.summary.cycles, consumer, dbt, owed, self.log)
                events = cycle_events(cycle)
            except Exception as exc:  # a cycle's failure must not end live mode; interrupts are no Exception
                cycle, events, errors = None, [], [f"cycle: {type(exc).__name__}: {exc}"]
            if events:
                started = time.monotonic()
                yield events  # the caller reports them
                cycle.seconds["report"] = time.monotonic() - started
            if cycle is not None:
                errors += cycle.errors
                self.summary.messages += cycle.stats.messages
                background.after_cycle(cycle.built_days, cycle.build is not None)
                if cycle.build is not None or cycle.stats.messages:
                    self.log.info(cycle.summary())
                    started = time.monotonic()
                    metrics.observe(cycle)
                    cycle.seconds["metrics"] = time.monotonic() - started  # after the histograms saw it
                    _append_timings(cycle)
            if not self.stop.is_set():
                errors += yield from self._slice(background)
            failing = self._settle(errors, failing)
            pause = settings.live_poll_seconds() * (2 ** min(failing, 6) if failing else 1)
            self.stop.wait(min(pause, MAX_BACKOFF_S))
        self.summary.stopped_because = reason

    def _slice(self, background: Background) -> Iterator[list[dg.AssetMaterialization]]:
        """One slice of background work, its events yielded like a cycle's; returns its errors."""
        try:
            done = background.step()
            if done is None:
                return []
            for evaluation in done.evaluations:  # the dbt tests' asset checks, to the instance
                self.instance.report_runless_asset_event(evaluation)
        except Exception as exc:
            return [f"background: {type(exc).__name__}: {exc}"]
        self.summary.slices += 1
        events = slice_events(done, self.summary.session, self.summary.cycles)
        report = 0.0
        if events:
            started = time.monotonic()
            yield events
            report = time.monotonic() - started
        self.log.info(f"live {done.slice.kind} slice after cycle {self.summary.cycles}: {done.slice.label} "
                      f"({done.seconds:.2f}s)" + (f"; FAILED: {done.errors}" if done.errors else ""))  # fmt: skip
        _append_slice(done, self.summary, report)
        return done.errors

    def _settle(self, errors: list[str], failing: int) -> int:
        """Alert when a failure episode starts, log its end; returns the failing-cycles count."""
        s = self.summary
        if not errors:
            if failing:
                self.log.info(f"live mode {s.session}: cycles succeed again after {failing} failed")
            return 0
        s.failed_cycles += 1
        message = "; ".join(errors)
        self.log.warning(f"live cycle {s.cycles} failed: {message}")
        if failing == 0:
            send_alert("live_cycle_failed", message, self.log, session=s.session, cycle=s.cycles)
        return failing + 1


def _append_timings(cycle: CycleResult) -> None:
    """One JSON line per cycle that did something: what a benchmark or a person reads back."""
    line = {
        "session": cycle.session,
        "cycle": cycle.number,
        "finished_at": time.time(),
        "messages": cycle.stats.messages,
        "rows": cycle.stats.summary.rows,
        "days": sorted(d.isoformat() for d in cycle.built_days),
        "published_at": cycle.publication.published_at if cycle.publication else None,
        "seconds": {k: round(v, 3) for k, v in cycle.seconds.items()},
        "errors": cycle.errors,
    }
    _append(line)


def _append_slice(done: SliceResult, summary: LoopSummary, report: float) -> None:
    """A background slice's line: after the cycle it followed, with no messages of its own."""
    _append({
        "session": summary.session,
        "cycle": summary.cycles,
        "slice": done.slice.label,
        "kind": done.slice.kind,
        "finished_at": time.time(),
        "published_at": done.publication.published_at if done.publication else None,
        "seconds": {"dbt": round(done.seconds, 3), "report": round(report, 3)},
        "errors": done.errors,
    })  # fmt: skip


def _append(line: dict[str, Any]) -> None:
    path = live_dir() / "cycles.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rotate_if_larger(path, settings.bound("log_max_bytes"))
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
