"""Live mode's background work, cut into slices: the insights models and the dbt tests (issue #28).

A cycle (cycle.py) runs only the models the dashboards' freshness rests on. The rest takes its turn
here, one slice (one dbt invocation) between two cycles (loop.py), so a batch just put on Kafka
waits for one slice at most, never for a whole insights run nor for every test; on a busy machine
each slice is slower, but the wait stays one slice.

- Insights pass: when REDSET_LIVE_INSIGHTS_SECONDS have passed since the last one ended and dates
  are owed to the insights models (models/marts/insights): each insights model on its own, in the
  graph's order, a daily one per stretch of owed dates, then a publish. A date that a cycle rebuilt
  meanwhile stays owed (its new rows came after the models read it); the others leave
  `owed.insights` when the pass ends well. A failed slice ends the pass, and its dates stay owed.
- Test pass: when verify.due and models were rebuilt since the last: `dbt test` of the tests that
  one file defines, a file per slice (`--indirect-selection empty`: each test in exactly one
  slice), each result reported as its asset check; the verification state is recorded once, from
  the whole pass, at its end (verify.record).

One pass at a time, insights first when both are due. The slices run at the loop's own priority:
they and the cycles take turns in one thread, so a lower priority would only slow the slice a
marker waits behind.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date
from graphlib import TopologicalSorter
from typing import Any

from dbt.contracts.graph.manifest import Manifest

from pipeline_assets import settings
from pipeline_assets.live import verify
from pipeline_assets.live.build import BuildResult, daily_windows, invoke_models, window_env_of
from pipeline_assets.live.state import Owed
from pipeline_assets.live.warm_dbt import WarmDbt
from pipeline_assets.serving.freshness_check import refresh as refresh_source_freshness
from pipeline_assets.serving.snapshot import Publication, publish
from pipeline_assets.warehouse.lock import warehouse_writer

INSIGHTS_PATH = "models/marts/insights/"


@dataclass(frozen=True)
class Slice:
    kind: str  # "insights" or "tests"
    label: str  # for the log: what it runs
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    window: tuple[date, date] | None = None  # a daily model's first and last day


@dataclass
class SliceResult:
    slice: Slice
    last_of_pass: bool = False
    build: BuildResult | None = None  # an insights slice's models
    evaluations: list[Any] = field(default_factory=list)  # a test slice's asset check evaluations
    publication: Publication | None = None  # the insights pass's, after its last slice
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def insights_models(manifest: Manifest) -> list[tuple[str, bool]]:
    """(name, daily) of every insights model, each after the insights models it reads."""
    nodes = {uid: n for uid, n in manifest.nodes.items()
             if n.resource_type == "model" and n.original_file_path.startswith(INSIGHTS_PATH)}  # fmt: skip
    graph = {uid: [d for d in n.depends_on.nodes if d in nodes] for uid, n in nodes.items()}
    order = TopologicalSorter(graph).static_order()
    return [(nodes[uid].name, "daily" in nodes[uid].tags) for uid in order]


def insights_slices(manifest: Manifest, days: set[date]) -> list[Slice]:
    """One insights model per slice; a daily one once per stretch of `days` (build.py's windows)."""
    out = []
    for name, daily in insights_models(manifest):
        if not daily:
            out.append(Slice("insights", name, ("run", "--select", name)))
            continue
        for first, last in daily_windows(days):
            env = tuple(window_env_of(first, last).items())
            out.append(Slice("insights", f"{name} {first}..{last}", ("run", "--select", name), env, (first, last)))
    return out


def test_slices(manifest: Manifest) -> list[Slice]:
    """One slice per file that defines tests (schema YAML, unit tests, a singular test)."""
    files = {t.original_file_path for t in [*manifest.nodes.values(), *manifest.unit_tests.values()]
             if t.resource_type in ("test", "unit_test")}  # fmt: skip
    args = ("test", "--indirect-selection", "empty", "--select")
    return [Slice("tests", f"tests of {f}", (*args, f"path:{f}")) for f in sorted(files)]


class Background:
    """`step()` after each cycle runs the next slice, starting a pass when one is due."""

    def __init__(self, dbt: WarmDbt, owed: Owed, log: Any) -> None:
        self.dbt, self.owed, self.log = dbt, owed, log
        self.queue: deque[Slice] = deque()
        self.kind: str | None = None  # the pass in progress
        self.days: set[date] = set()  # an insights pass's dates, and those cycles rebuilt during it
        self.touched: set[date] = set()
        self.failed_tests: list[str] = []
        self.last_insights: float | None = None  # time.monotonic() at the end of the last pass
        self.last_tests: float | None = None
        self.untested = False  # models were rebuilt since the test pass last started
        self.passes = {"insights": 0, "tests": 0}  # passes ended well

    def after_cycle(self, built_days: set[date], built: bool) -> None:
        """What a cycle rebuilt: its days owe the insights again, its models the tests."""
        self.touched |= built_days if self.kind == "insights" else set()
        self.untested |= built

    def step(self) -> SliceResult | None:
        """The next slice of the pass in progress, or of a pass due now; None: nothing to do."""
        if not self.queue and not self._start(time.monotonic()):
            return None
        job = self.queue.popleft()
        result = SliceResult(job, last_of_pass=not self.queue)
        started = time.monotonic()
        try:
            self._run(job, result)
        except Exception as exc:  # e.g. DbtDeadlineError: the pass ends, the loop goes on
            result.errors.append(f"{job.label}: {type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        if result.errors or result.last_of_pass:
            self._end(result)
        return result

    def _start(self, now: float) -> bool:
        if self.owed.insights and (self.last_insights is None or now - self.last_insights >= settings.live_insights_seconds()):
            self.kind, self.days, self.touched = "insights", set(self.owed.insights), set()
            self.queue.extend(insights_slices(self.dbt.manifest, self.days))
        elif self.untested and verify.due(self.last_tests, now):
            self.kind, self.failed_tests, self.untested = "tests", [], False
            self.last_tests = now
            self.queue.extend(test_slices(self.dbt.manifest))
        return bool(self.queue)

    def _run(self, job: Slice, result: SliceResult) -> None:
        if job.kind == "tests":
            result.evaluations, failed = verify.check_results(self.dbt, list(job.args), {}, log=self.log)
            self.failed_tests += failed
            return
        result.build, self.untested = BuildResult(), True
        with warehouse_writer(f"live mode: insights slice {job.label}", log=self.log):
            invoke_models(self.dbt, list(job.args), dict(job.env), result.build, job.window)
            result.errors += result.build.errors
            if result.last_of_pass and not result.errors:
                result.publication = publish()

    def _end(self, result: SliceResult) -> None:
        """The pass is over: well (dates settled, tests recorded) or at its first failed slice."""
        self.queue.clear()
        kind, self.kind = self.kind, None
        if kind == "insights":
            self.last_insights = time.monotonic()  # from its end: cycles get their turns in between
            if not result.errors:
                self.owed.insights -= self.days - self.touched
                self.owed.save()
        elif kind == "tests" and not result.errors:
            verify.record(self.failed_tests, log=self.log)
            refresh_source_freshness(log=self.log)  # the dashboards' status line; never raises
        if not result.errors and kind is not None:
            self.passes[kind] += 1
