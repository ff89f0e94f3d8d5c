"""The daily schedule: materialise the daily dbt partitions of the latest complete day.

"Complete" is judged from the data, not the wall clock, because Redset is a replay: the newest
arrival date in the raw zone may still be filling, so the latest complete day is the one before
it. Only dates inside the data's span count: one row dated 9999 (quarantined by dbt as
arrival_out_of_span) must not make 9998-12-31 the latest complete day. The sensor
build_marts_on_new_raw_batches already builds every day as batches land; the schedule is the
safety net that rebuilds each day once after it is over, and takes along the days whose builds
kept failing (stale: see owed_builds.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from pipeline_assets import schema, settings
from pipeline_assets.storage import filesystem
from pipeline_assets.orchestration.jobs import build_marts_job
from pipeline_assets.orchestration.owed_builds import stale_partitions
from pipeline_assets.orchestration.sensors import daily_run_requests
from pipeline_assets.warehouse.partitions import partition_for


def raw_arrival_dates(raw_dir: Path | str) -> list[date]:
    """Arrival dates with at least one published Parquet file in the raw zone (a folder or s3://), sorted."""
    prefix = f"{schema.RAW_PARTITION_COLUMN}="
    days = set()
    for file in filesystem.published(raw_dir, f"{prefix}*/*.parquet")[1]:
        try:
            days.add(date.fromisoformat(file.rsplit("/", 2)[-2][len(prefix) :]))
        except ValueError:
            continue  # not a folder of ours
    return sorted(days)


def latest_complete_day(raw_dir: Path | str) -> date | None:
    """The day before the newest arrival date in the span, if the raw zone has rows from that day
    or earlier in the span."""
    start, end = settings.span_start(), settings.span_end()
    days = [d for d in raw_arrival_dates(raw_dir) if start <= d < end]
    if not days:
        return None
    candidate = days[-1] - timedelta(days=1)
    return candidate if days[0] <= candidate else None


@dg.schedule(
    name="daily_marts_schedule",
    job=build_marts_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every day at 00:30 UTC, rebuilds the daily dbt partitions of the latest complete day, and "
        "the stale ones (their automatic retries ran out) with it."
    ),
)
def daily_marts_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | list[dg.RunRequest] | dg.SkipReason:
    day = latest_complete_day(settings.zone_url("raw"))
    if day is None:
        return dg.SkipReason(f"no complete arrival day in {settings.zone_url('raw')} yet")
    partition = partition_for(day)
    stale = stale_partitions(context.instance)
    if stale:
        days = {day, *(date.fromisoformat(p) for p in stale)}
        return daily_run_requests(days, stamp=f"daily-{partition}")
    return dg.RunRequest(run_key=f"daily-{partition}", partition_key=partition)
