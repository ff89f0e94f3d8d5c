"""The live loop: one process, cycles until stopped (cycle.py does one; this decides when and how often).

- dbt is parsed once, at start (warm_dbt.py); the Kafka consumer stays open.
- Every cycle: consume and build (cycle.py), then report the materializations (report.py) and
  append the cycle's timings to `<data dir>/live/cycles.jsonl`.
- The insights models join a cycle at most every REDSET_LIVE_INSIGHTS_SECONDS; the dbt tests run
  every REDSET_LIVE_TEST_SECONDS (verify.py), their evaluations reported as asset checks.
- Between cycles it pauses REDSET_LIVE_POLL_SECONDS, holding no lock: batch writers take turns.
- A failed cycle raises one `live_cycle_failed` alert per episode and backs off (doubling, at most
  a minute); the loop goes on. An interrupt (KeyboardInterrupt, run termination) is not caught.
- It ends when `stop` is set (stopping.py: the first SIGINT/SIGTERM), when `keep_going()` gives a
  reason to stop (live_mode_job: its sensor was switched off), or after `max_cycles`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.live import verify
from pipeline_assets.live.consume import LiveConsumer
from pipeline_assets.live.cycle import CycleResult, run_cycle
from pipeline_assets.live.report import Reporter, cycle_events
from pipeline_assets.live.state import Owed, live_dir
from pipeline_assets.live.switch import one_live_loop
from pipeline_assets.live.warm_dbt import WarmDbt
from pipeline_assets.resources import KafkaResource

MAX_BACKOFF_S = 60.0

_logger = logging.getLogger(__name__)


@dataclass
class LoopSummary:
    session: str
    cycles: int = 0
    messages: int = 0
    failed_cycles: int = 0
    stopped_because: str = ""


def run_live(
    reporter: Reporter,
    stop: threading.Event,
    *,
    where: str,
    log: Any = _logger,
    kafka: KafkaResource | None = None,
    keep_going: Callable[[], str | None] = lambda: None,
    max_cycles: int | None = None,
) -> LoopSummary:
    """Run live mode until stopped; `where` names this loop (a run id, `redset live`) for others."""
    summary = LoopSummary(session=uuid.uuid4().hex[:8])
    with one_live_loop(where):
        started = time.monotonic()
        dbt = WarmDbt()
        dbt.manifest  # noqa: B018  (the one parse, before the first cycle)
        log.info(f"live mode {summary.session} ({where}): dbt parsed in {time.monotonic() - started:.1f}s")
        consumer = LiveConsumer(kafka, log=log.debug)
        try:
            _cycles(summary, reporter, stop, dbt, consumer, log, keep_going, max_cycles)
        finally:
            consumer.close()
    log.info(f"live mode {summary.session} stopped ({summary.stopped_because}) after {summary.cycles} cycles")
    return summary


def _cycles(summary, reporter, stop, dbt, consumer, log, keep_going, max_cycles) -> None:
    owed = Owed.load()
    last_insights: float | None = None
    last_tests: float | None = None
    untested = False  # models were rebuilt since the tests last ran
    failing = 0
    while True:
        reason = "stop requested" if stop.is_set() else keep_going()
        if reason is None and max_cycles is not None and summary.cycles >= max_cycles:
            reason = f"{max_cycles} cycles done"
        if reason:
            summary.stopped_because = reason
            return
        now = time.monotonic()
        insights_due = last_insights is None or now - last_insights >= settings.live_insights_seconds()
        summary.cycles += 1
        cycle, errors = _one_cycle(summary, reporter, consumer, dbt, owed, insights_due, log)
        if insights_due and cycle is not None and cycle.build is not None and cycle.build.ok:
            last_insights = now
        untested |= cycle is not None and cycle.build is not None
        if untested and verify.due(last_tests, now):
            last_tests, untested = now, False
            errors += _tests(reporter, dbt, log)
        summary.messages += cycle.stats.messages if cycle else 0
        if cycle is not None and (cycle.build is not None or cycle.stats.messages):
            log.info(cycle.summary())
            _append_timings(cycle)
        failing = _settle(errors, failing, summary, log)
        pause = settings.live_poll_seconds() * (2 ** min(failing, 6) if failing else 1)
        stop.wait(min(pause, MAX_BACKOFF_S))


def _one_cycle(summary, reporter, consumer, dbt, owed, insights_due, log) -> tuple[CycleResult | None, list[str]]:
    """Run and report one cycle; its errors (a failed model, or what the cycle raised)."""
    try:
        cycle = run_cycle(summary.session, summary.cycles, consumer, dbt, owed, insights_due, log=log)
        started = time.monotonic()
        reporter.materializations(cycle_events(cycle))
        cycle.seconds["report"] = time.monotonic() - started
    except Exception as exc:  # a cycle's failure must not end live mode; interrupts are no Exception
        return None, [f"cycle: {type(exc).__name__}: {exc}"]
    return cycle, list(cycle.errors)


def _tests(reporter: Reporter, dbt: WarmDbt, log: Any) -> list[str]:
    """The dbt tests as asset checks (verify.py alerts on failing tests itself)."""
    try:
        reporter.checks(verify.run_checks(dbt, {}, log=log))
    except Exception as exc:
        return [f"dbt tests: {type(exc).__name__}: {exc}"]
    return []


def _settle(errors: list[str], failing: int, summary: LoopSummary, log: Any) -> int:
    """Alert when a failure episode starts, log its end; returns the failing-cycles count."""
    if not errors:
        if failing:
            log.info(f"live mode {summary.session}: cycles succeed again after {failing} failed")
        return 0
    summary.failed_cycles += 1
    message = "; ".join(errors)
    log.warning(f"live cycle {summary.cycles} failed: {message}")
    if failing == 0:
        send_alert("live_cycle_failed", message, log, session=summary.session, cycle=summary.cycles)
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
        "with_insights": cycle.with_insights,
        "published_at": cycle.publication.published_at if cycle.publication else None,
        "seconds": {k: round(v, 3) for k, v in cycle.seconds.items()},
        "errors": cycle.errors,
    }
    path = live_dir() / "cycles.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
