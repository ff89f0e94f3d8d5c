"""Failed Dagster runs of the pipeline's jobs, from the instance's run records."""

from __future__ import annotations

import dagster as dg

# Every job of definitions.py (tests/test_metrics_collector.py checks the list against it); named
# here so that a scrape does not load the code location.
JOBS = ("dump_kafka_job", "ingest_landing_file_job", "build_marts_job", "serving_snapshot_job", "live_mode_job")


def failed_runs(instance: dg.DagsterInstance) -> dict[str, int]:
    """job -> failed runs of it on record, every job of JOBS included."""
    failure = [dg.DagsterRunStatus.FAILURE]
    return {job: instance.get_runs_count(filters=dg.RunsFilter(job_name=job, statuses=failure)) for job in JOBS}
