"""Dagster's run storage kept bounded: the sensor prune_old_runs deletes finished runs older than
REDSET_RUN_RETENTION_DAYS (30), with their event logs. Dagster has no run retention of its own
(its `retention:` setting covers schedule and sensor ticks: scripts/dagster.yaml sets it). Runs
still queued or in progress are never touched.
"""

from __future__ import annotations

import time

import dagster as dg

from pipeline_assets import settings

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
PER_TICK = 500  # runs deleted per tick at most, so one tick stays short


def prune_runs(instance: dg.DagsterInstance, older_than_s: float, now: float | None = None, limit: int = PER_TICK) -> int:
    """Delete finished runs last updated more than `older_than_s` ago; returns how many."""
    from datetime import datetime, timezone

    cutoff = datetime.fromtimestamp((now or time.time()) - older_than_s, timezone.utc)
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, updated_before=cutoff), limit=limit, ascending=True
    )
    for record in records:
        instance.delete_run(record.dagster_run.run_id)
    return len(records)


@dg.sensor(
    name="prune_old_runs",
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deletes finished runs older than REDSET_RUN_RETENTION_DAYS (30), at most 500 an hour.",
)
def prune_old_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    days = settings.bound("run_retention_days")
    deleted = prune_runs(context.instance, days * 86400)
    return dg.SkipReason(f"deleted {deleted} finished run(s) older than {days:g} days")
