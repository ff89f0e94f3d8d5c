"""Failed builds are rebuilt: the dates of a failed build_marts_job stay owed until a build of them
succeeds, are retried with back-off, and past the bound are stale (one alert) until the next build
that runs anyway takes them along.

The sensor ticks here are evaluated by hand, and the runs they request are either executed for real
(dbt, in process, as build_marts_job) or recorded as finished runs in the instance, which is all the
sensor reads of them.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest
from dbt_support import dbt_paths, query, write_raw_file
from test_dbt_incremental import kafka_rows

from pipeline_assets import schema
from pipeline_assets.orchestration.definitions import defs
from pipeline_assets.orchestration.jobs import build_marts_job
from pipeline_assets.orchestration.owed_builds import (
    LOST_REQUEST_SECONDS,
    OwedBuilds,
    backoff_seconds,
    stale_partitions,
)
from pipeline_assets.orchestration.schedules import daily_marts_schedule
from pipeline_assets.orchestration.sensors import build_marts_on_new_raw_batches
from pipeline_assets.raw import owed_dates
from pipeline_assets.source import generator
from pipeline_assets.warehouse.partitions import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG


def report(instance: dg.DagsterInstance, days: list[str]) -> None:
    """What the raw dump records before it commits a batch."""
    owed_dates.record([date.fromisoformat(d) for d in days], "a-dump-run")


def tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    return build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance, cursor=cursor))


def dates(result: dg.SensorResult) -> list[tuple[str, str]]:
    """The partition ranges a tick requested, (first, last) per run."""
    spans = []
    for r in result.run_requests:
        single = (r.partition_key, r.partition_key)
        spans.append(single if r.partition_key else (r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]))
    return spans


def finish(instance: dg.DagsterInstance, request: dg.RunRequest, status: dg.DagsterRunStatus) -> None:
    """Record the run of a request as finished with `status` (the tags are what the daemon gives it)."""
    tags = {**request.tags, **({PARTITION_TAG: request.partition_key} if request.partition_key else {})}
    instance.add_run(dg.DagsterRun(job_name=build_marts_job.name, run_id=str(uuid.uuid4()), status=status, tags=tags))


def alert_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))  # the owed-dates records
    monkeypatch.setenv("REDSET_BUILD_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("REDSET_BUILD_RETRY_SECONDS", "0")
    return tmp_path / "alerts.log"


FAILURE, SUCCESS = dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS


def test_backoff_doubles_and_is_capped(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDSET_BUILD_RETRY_SECONDS", "60")
    assert [backoff_seconds(n) for n in (1, 2, 3)] == [60, 120, 240]
    assert backoff_seconds(20) == 3600


def test_a_failed_build_waits_out_its_backoff_then_is_requested_again(alerts: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDSET_BUILD_RETRY_SECONDS", "3600")
    with dg.instance_for_test() as instance:
        report(instance, ["2024-03-02"])
        first = tick(instance, None)
        [request] = first.run_requests
        finish(instance, request, FAILURE)

        waiting = tick(instance, first.cursor)
        assert not waiting.run_requests
        assert "1 date(s) failed to build, next retry at" in waiting.skip_reason.skip_message

        # An hour later (here: a back-off of 0 s) the same date is asked for again, under a new run key.
        monkeypatch.setenv("REDSET_BUILD_RETRY_SECONDS", "0")
        retry = tick(instance, waiting.cursor)
        assert dates(retry) == [("2024-03-02", "2024-03-02")]
        assert retry.run_requests[0].run_key != request.run_key
        assert alert_lines(alerts) == []


def test_past_the_bound_dates_are_stale_with_one_alert_until_a_build_takes_them_along(
    alerts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with dg.instance_for_test() as instance:
        report(instance, ["2024-03-02"])
        cursor = None
        for attempt in range(3):  # the first build and two automatic retries, all failing
            result = tick(instance, cursor)
            assert dates(result) == [("2024-03-02", "2024-03-02")], attempt
            finish(instance, result.run_requests[0], FAILURE)
            cursor = result.cursor

        # Past the bound: no more builds of its own, listed as stale, one alert, however many ticks.
        for _ in range(2):
            result = tick(instance, cursor)
            assert not result.run_requests
            assert "stale: 2024-03-02" in result.skip_reason.skip_message
            cursor = result.cursor
        [line] = alert_lines(alerts)
        assert "STALE MARTS job=build_marts_job dates=2024-03-02:" in line
        assert stale_partitions(instance) == ["2024-03-02"]

        # The daily schedule's build takes it along (it reads the stale dates from the instance) ...
        monkeypatch.setenv("REDSET_RAW_DIR", str(tmp_path / "raw"))
        for day in ("2024-03-06", "2024-03-07"):
            (tmp_path / "raw" / f"arrival_date={day}").mkdir(parents=True)
            (tmp_path / "raw" / f"arrival_date={day}" / "t-p0-o0-9.parquet").write_bytes(b"")
        with dg.build_schedule_context(instance=instance) as context:  # exited, so the instance is let go
            scheduled = daily_marts_schedule(context)
        scheduled = scheduled if isinstance(scheduled, list) else [scheduled]
        assert sorted(r.partition_key for r in scheduled) == ["2024-03-02", "2024-03-06"]
        # ... and fails again: still stale, no second alert in the same episode.
        finish(instance, next(r for r in scheduled if r.partition_key == "2024-03-02"), FAILURE)
        result = tick(instance, cursor)
        assert not result.run_requests and "stale: 2024-03-02" in result.skip_reason.skip_message
        assert len(alert_lines(alerts)) == 1

        # A new raw batch: its build takes the stale date along, and both succeed.
        report(instance, ["2024-03-05"])
        taken = tick(instance, result.cursor)
        assert dates(taken) == [("2024-03-02", "2024-03-02"), ("2024-03-05", "2024-03-05")]
        for request in taken.run_requests:
            finish(instance, request, SUCCESS)
        done = tick(instance, taken.cursor)
        assert done.skip_reason.skip_message == "no new raw batches"
        assert json.loads(done.cursor)["owed"] == {}
        assert stale_partitions(instance) == []
        assert len(alert_lines(alerts)) == 1


def test_a_success_pays_only_for_data_seen_before_the_run_and_a_lost_request_counts_as_a_failure(alerts: Path):
    owed = OwedBuilds()
    owed.add(["2024-03-02", "2024-03-03"], now=100.0)
    owed.mark_requested(["2024-03-02", "2024-03-03"], now=100.0)
    owed.add(["2024-03-03"], now=150.0)  # more data for 03-03 while its build runs
    tags = {RANGE_START_TAG: "2024-03-02", RANGE_END_TAG: "2024-03-03"}
    run = dg.DagsterRun(job_name=build_marts_job.name, status=SUCCESS, tags=tags)
    owed.record_run(run, created=120.0, ended=200.0)
    assert list(owed.owed) == ["2024-03-03"]
    assert owed.to_request(now=201.0) == ["2024-03-03"]

    owed.mark_requested(["2024-03-03"], now=300.0)
    owed.forget_lost_requests(now=300.0 + LOST_REQUEST_SECONDS)  # its run may still come
    assert owed.owed["2024-03-03"].attempts == 0
    owed.forget_lost_requests(now=301.0 + LOST_REQUEST_SECONDS)  # it never came
    assert owed.owed["2024-03-03"].attempts == 1 and owed.owed["2024-03-03"].requested is None


# --- with dbt -------------------------------------------------------------------------------------


def build(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute a requested build_marts_job run in process, as the daemon would launch it."""
    job = defs.get_job_def(build_marts_job.name)
    return job.execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
    )


@pytest.mark.slow(seconds=50)
def test_a_broken_build_is_rebuilt_once_repaired_with_no_one_asking(
    alerts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    paths = dbt_paths(monkeypatch, tmp_path)  # the same alert log as the fixture's
    rows = generator.generate(rows=300, seed=3, deployment="both", start=date(2024, 3, 1), days=2)
    rows = rows.select(list(schema.COLUMN_NAMES)).to_pylist()
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", datetime(2024, 3, 3)), "redset.queries-p0-o0.parquet")
    # The break: a file in the raw zone that is not Parquet. stg_query_deliveries reads every raw
    # file, so the model fails and the build with it.
    broken = paths.raw_dir / "arrival_date=2024-03-02" / "redset.queries-p0-o300.parquet"
    broken.write_bytes(b"half a file")

    with dg.instance_for_test() as instance:
        report(instance, ["2024-03-01", "2024-03-02"])
        first = tick(instance, None)
        assert dates(first) == [("2024-03-01", "2024-03-02")]
        failed = build(instance, first.run_requests[0])
        assert not failed.success
        [failure] = [e for e in failed.all_events if e.is_step_failure]
        assert failure.step_key == "dbt_daily_models"
        assert "stg_query_deliveries" in failure.step_failure_data.error.message

        broken.unlink()  # the repair; nobody asks for a rebuild
        retry = tick(instance, first.cursor)
        assert dates(retry) == [("2024-03-01", "2024-03-02")]
        assert build(instance, retry.run_requests[0]).success

        done = tick(instance, retry.cursor)
        assert done.skip_reason.skip_message == "no new raw batches"
        assert json.loads(done.cursor)["owed"] == {}
    built = query(paths.warehouse, "select arrival_date, sum(queries) from query_metrics group by 1")
    assert {str(day): n for day, n in built} == Counter(str(r["arrival_timestamp"].date()) for r in rows)
    assert alert_lines(alerts) == []
