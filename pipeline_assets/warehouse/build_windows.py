"""A long partition range of the daily dbt models is built in bounded windows of days.

A first load or a backfill covers up to the whole span (91 days) in one Dagster run. Built as one
dbt invocation, every daily model then works on all the raw rows at once, and DuckDB's spill grew
~14x faster than the data at 50M rows (issue #12). Built as consecutive windows of at most
REDSET_DBT_WINDOW_ROWS raw rows each, in date order, the spill is bounded by the window, whatever
the range. The windows run inside the one Dagster step, under the one writer lock, so ordering
(stress_index reads the day before) and the lineage stay as they were; warehouse/dbt_assets.py reports the last
window's events, and any failing test of an earlier window (see CheckResults).

The raw rows per day come from the Parquet footers of the raw zone (no data is read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, timedelta
import os

import dagster as dg
import pyarrow.parquet as pq

from pipeline_assets.storage import filesystem

PARTITION_PREFIX = "arrival_date="


def rows_per_day(raw_dir: str | os.PathLike[str], first: date = date.min, last: date = date.max) -> dict[date, int]:
    """Rows in the raw zone (a folder or an s3:// URL) per arrival_date from first to last (footers
    only; unreadable files count 0)."""
    counts: dict[date, int] = {}
    fs, files = filesystem.published(raw_dir, f"{PARTITION_PREFIX}*/*.parquet")
    for file in files:
        try:
            day = date.fromisoformat(file.rsplit("/", 2)[-2].removeprefix(PARTITION_PREFIX))
        except ValueError:
            continue
        if not first <= day <= last:
            continue
        try:
            with fs.open(file, "rb") as f:
                rows = pq.ParquetFile(f).metadata.num_rows
        except Exception:  # a torn or foreign file: the dump quarantines it, sizing just skips it
            rows = 0
        counts[day] = counts.get(day, 0) + rows
    return counts


def plan(first: date, last: date, rows: Mapping[date, int], max_rows: int) -> list[tuple[date, date]]:
    """Consecutive (first, last) day windows covering first..last (inclusive) in order, each
    holding at most max_rows raw rows, or a single day that alone holds more. max_rows <= 0: one
    window."""
    if last < first:
        raise ValueError(f"window {first}..{last} ends before it starts")
    if max_rows <= 0:
        return [(first, last)]
    windows, start, held = [], first, 0
    day = first
    while day <= last:
        n = rows.get(day, 0)
        if day > start and held + n > max_rows:
            windows.append((start, day - timedelta(days=1)))
            start, held = day, 0
        held += n
        day += timedelta(days=1)
    windows.append((start, last))
    return windows


def time_windows(window: dg.TimeWindow, raw_dir: str | os.PathLike[str], max_rows: int) -> list[dg.TimeWindow]:
    """A partition range's TimeWindow split into the planned windows (end exclusive, as Dagster's)."""
    first, last = window.start.date(), (window.end - timedelta(days=1)).date()
    if max_rows <= 0 or first == last:  # nothing to split: no footer is read (a sensor's one-day run)
        return [window]
    days = plan(first, last, rows_per_day(raw_dir, first, last), max_rows)

    def at(d: date):
        return window.start + timedelta(days=(d - first).days)

    return [dg.TimeWindow(at(a), at(b) + timedelta(days=1)) for a, b in days]


class CheckResults:
    """Test results of the earlier windows: a check reported by the last window keeps the first
    earlier failure of the same check instead of its own pass, so a failing test anywhere in the
    range is never reported as passed."""

    def __init__(self) -> None:
        self._failed: dict[dg.AssetCheckKey, tuple[str, dg.AssetCheckResult]] = {}

    def hold(self, events: Iterable[object], label: str) -> tuple[int, int]:
        """Consume an earlier window's events; returns (materialized models, tests)."""
        models = tests = 0
        for event in events:
            if isinstance(event, dg.AssetCheckResult):
                tests += 1
                key = dg.AssetCheckKey(event.asset_key, event.check_name)
                if not event.passed and key not in self._failed:
                    self._failed[key] = (label, event)
            elif isinstance(event, dg.Output | dg.AssetMaterialization):
                models += 1
        return models, tests

    def merge(self, events: Iterable[object]) -> Iterator[object]:
        """The last window's events, a pass replaced by an earlier failure of the same check."""
        for event in events:
            if isinstance(event, dg.AssetCheckResult):
                key = dg.AssetCheckKey(event.asset_key, event.check_name)
                earlier = self._failed.pop(key, None)
                if earlier is not None and event.passed:
                    label, failed = earlier
                    event = _marked(failed, label)
            yield event
        for label, failed in self._failed.values():  # a check the last window did not run
            yield _marked(failed, label)
        self._failed.clear()


def _marked(failed: dg.AssetCheckResult, label: str) -> dg.AssetCheckResult:
    return failed._replace(metadata={**failed.metadata, "failed in window": dg.MetadataValue.text(label)})
