"""Daily partitions by arrival date, over the data's span (settings.span_start/span_end)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import dagster as dg

from pipeline_assets import settings

DATE_FORMAT = "%Y-%m-%d"

# Tags that name a run's partitions: one partition, or a range in one run (what a single-run
# backfill uses).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# span_end is the first day after the span, and end_date is exclusive: one partition per day.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=settings.span_start().isoformat(),
    end_date=settings.span_end().isoformat(),
    fmt=DATE_FORMAT,
)


def partition_for(day: date) -> str:
    """The partition that processes rows arriving on `day`.

    Rows before the span belong to the first partition and rows after it to the last one: those
    edge partitions are open-ended in dbt (macro partition_window), so such rows still reach the
    quarantine instead of being skipped.
    """
    first, last = settings.span_start(), settings.span_end() - timedelta(days=1)
    return min(max(day, first), last).strftime(DATE_FORMAT)


def run_partitions(tags: Mapping[str, str]) -> list[str]:
    """The daily partitions a run covers, from its tags (none for a run without partitions)."""
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        return [(first + timedelta(days=n)).strftime(DATE_FORMAT) for n in range((last - first).days + 1)]
    return []


def contiguous_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted, distinct days grouped into runs of consecutive days: [(first, last), ...]."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
