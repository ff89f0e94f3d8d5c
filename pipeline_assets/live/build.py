"""A live cycle's dbt step: `dbt run` of the daily models for the dates it touched, then the all-time marts.

`run`, not `build`: the dbt tests run on their own, slower cadence (verify.py). The daily models
(tag:daily) run once per stretch of consecutive touched dates, with the stretch as the partition
window (warehouse/dbt_assets.py `window_env`), exactly as a batch partition run of that range would; then the
all-time marts (`--exclude tag:daily`) once.

The insights models (models/marts/insights) cost most of a cycle on 1M rows, so a live cycle
leaves them out (`with_insights=False`): they run in slices between cycles, at most every
REDSET_LIVE_INSIGHTS_SECONDS, for every date touched since their last run (background.py).
`with_insights=True` builds a day with every model at once (bench/transform.py's new day).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import dagster as dg

from pipeline_assets.live.warm_dbt import WarmDbt, failures
from pipeline_assets.warehouse.dbt_assets import DAILY_SELECT, window_env
from pipeline_assets.warehouse.partitions import DATE_FORMAT, contiguous_ranges, partition_for
from pipeline_assets.warehouse.translator import translator

INSIGHTS = "path:models/marts/insights"
OK_STATUSES = ("success", "pass")


@dataclass(frozen=True)
class ModelRun:
    """One model of one dbt invocation: its name, status and seconds; the window for a daily run."""

    name: str
    asset_key: dg.AssetKey
    status: str
    seconds: float
    window: tuple[date, date] | None = None  # first and last day; None: an all-time model

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def partitions(self) -> list[str]:
        """The daily partition keys this run rebuilt (none for an all-time model)."""
        if self.window is None:
            return []
        first, last = self.window
        return [(first + timedelta(days=n)).strftime(DATE_FORMAT) for n in range((last - first).days + 1)]


@dataclass
class BuildResult:
    models: list[ModelRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    daily_seconds: float = 0.0
    all_time_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def selections(with_insights: bool) -> tuple[list[str], list[str]]:
    """The dbt selection arguments of (the daily run, the all-time run)."""
    if with_insights:
        return ["--select", DAILY_SELECT], ["--exclude", DAILY_SELECT]
    return ["--select", DAILY_SELECT, "--exclude", INSIGHTS], ["--exclude", DAILY_SELECT, INSIGHTS]


def daily_windows(days: Iterable[date]) -> list[tuple[date, date]]:
    """Stretches of consecutive partitions covering `days` (rows outside the span go to its edge partitions)."""
    return contiguous_ranges(datetime.strptime(partition_for(d), DATE_FORMAT).date() for d in days)


def run_models(dbt: WarmDbt, days: Iterable[date], with_insights: bool) -> BuildResult:
    """The daily models for `days` (nothing daily when empty), then the all-time marts."""
    daily_select, all_time_select = selections(with_insights)
    result = BuildResult()
    started = time.monotonic()
    for first, last in daily_windows(days):
        invoke_models(dbt, ["run", *daily_select], window_env_of(first, last), result, (first, last))
    result.daily_seconds = time.monotonic() - started
    started = time.monotonic()
    invoke_models(dbt, ["run", *all_time_select], {}, result, None)
    result.all_time_seconds = time.monotonic() - started
    return result


def window_env_of(first: date, last: date) -> dict[str, str]:
    """REDSET_MIN_DATE / REDSET_MAX_DATE of the days first..last, as window_env gives a partition range."""
    start, end = (datetime.combine(d, datetime.min.time()) for d in (first, last + timedelta(days=1)))
    return window_env(dg.TimeWindow(start, end))


def invoke_models(dbt: WarmDbt, args: list[str], env: dict[str, str], result: BuildResult, window: tuple[date, date] | None) -> None:
    """`dbt <args>`: each model's run into `result.models`, a failure into `result.errors`."""
    outcome = dbt.invoke(args, env)
    for r in getattr(outcome.result, "results", None) or []:
        key = translator.get_asset_key(r.node.to_dict())  # the key warehouse/dbt_assets.py's assets give this model
        result.models.append(ModelRun(r.node.name, key, str(r.status), float(r.execution_time or 0.0), window))
    if not outcome.success:
        what = f"dbt {' '.join(args)}" + (f" for {window[0]}..{window[1]}" if window else "")
        result.errors.append(f"{what}: {'; '.join(failures(outcome))}")
