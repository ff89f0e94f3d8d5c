"""Daily partitions by arrival date, over the data's span (settings.span_start/span_end)."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from pipeline_assets import settings

DATE_FORMAT = "%Y-%m-%d"

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
