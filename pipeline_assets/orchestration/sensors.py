"""Sensors: they turn events (new raw batches, failed runs) into runs and alerts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from datetime import date
from typing import Any

import dagster as dg
from confluent_kafka import KafkaException

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.kafka import offsets
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.switch import LIVE_SESSION_METADATA, live_mode_active
from pipeline_assets.orchestration.jobs import build_marts_job
from pipeline_assets.orchestration.owed_builds import OwedBuilds, publish_stale
from pipeline_assets.raw.dump import retries as dump_retries
from pipeline_assets.raw import owed_dates
from pipeline_assets.raw.dump.asset import raw_dump_in_flight
from pipeline_assets.raw.landing.requests import landing_location, landing_requests
from pipeline_assets.runtime.runs import run_in_flight
from pipeline_assets.runtime.workers import fail_dead_runs
from pipeline_assets.serving.snapshot import serving_snapshot
from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models
from pipeline_assets.warehouse.partitions import (
    DATE_FORMAT,
    RANGE_END_TAG,
    RANGE_START_TAG,
    contiguous_ranges,
    partition_for,
)

# --- new raw batches -> the daily dbt partitions they touched ---------------------------------

# The Kafka dump's dates come from its owed-dates records (raw/owed_dates.py), written before each
# commit: a run that fails after a commit reports no materialization, yet its rows are committed.
RAW_ASSET_KEYS = (dg.AssetKey("landing_queries"),)
RECORDS_PER_PAGE = 500


def arrival_dates(record: dg.EventLogRecord, log: Any) -> set[date]:
    """The `arrival_dates` a raw materialization reports; a malformed entry is logged and skipped."""
    materialization = record.asset_materialization
    entry = materialization.metadata.get("arrival_dates") if materialization else None
    if entry is None:
        return set()
    values = getattr(entry, "value", entry)
    if isinstance(values, str):
        values = json.loads(values)
    days = set()
    for value in values or []:
        try:
            days.add(date.fromisoformat(str(value)))
        except ValueError:
            log.warning(
                f"{materialization.asset_key.to_user_string()} (event {record.storage_id}): "
                f"arrival_dates entry {value!r} is not a YYYY-MM-DD date; skipped"
            )
    return days


def new_arrival_dates(
    instance: dg.DagsterInstance, cursor: dict[str, int], log: Any
) -> tuple[set[date], dict[str, int]]:
    """Arrival dates of every raw materialization after the cursor, and the advanced cursor."""
    days: set[date] = set()
    cursor = dict(cursor)
    for key in RAW_ASSET_KEYS:
        name = key.to_user_string()
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor.get(name)),
                limit=RECORDS_PER_PAGE,
                ascending=True,
            )
            for record in result.records:
                if not _from_live_mode(record):  # live mode builds the dates of its own batches
                    days |= arrival_dates(record, log)
                cursor[name] = record.storage_id
            if not result.has_more:
                break
    return days, cursor


def _from_live_mode(record: dg.EventLogRecord) -> bool:
    materialization = record.asset_materialization
    return materialization is not None and LIVE_SESSION_METADATA in materialization.metadata


def take_owed_records(instance: dg.DagsterInstance, taken: list[str], log: Any) -> tuple[set[date], list[str]]:
    """The dates of the owed-dates records not taken yet, and their names for the cursor. Records
    named in `taken` are in the saved cursor now, so they are settled (deleted) first. While live
    mode runs, its own records are left to it."""
    owed_dates.settle(taken)
    live = live_mode_active(instance) is not None
    records = owed_dates.pending(live=False if live else None, log=log)
    return {d for r in records for d in r.dates}, [r.name for r in records]


def daily_run_requests(days: Iterable[date], stamp: str) -> list[dg.RunRequest]:
    """Runs for exactly the daily partitions touched: one per stretch of consecutive days (the
    daily models take a range in one dbt invocation). `stamp` makes run keys unique to the tick."""
    partitions = {date.fromisoformat(partition_for(day)) for day in days}
    requests = []
    for first, last in contiguous_ranges(partitions):
        start, end = first.strftime(DATE_FORMAT), last.strftime(DATE_FORMAT)
        run_key = f"{start}...{end}@{stamp}"
        if first == last:
            requests.append(dg.RunRequest(run_key=run_key, partition_key=start))
        else:
            requests.append(dg.RunRequest(run_key=run_key, tags={RANGE_START_TAG: start, RANGE_END_TAG: end}))
    return requests


@dg.sensor(
    name="build_marts_on_new_raw_batches",
    job=build_marts_job,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests the daily dbt partitions of exactly the arrival dates the raw dump recorded "
        "before each commit (data/owed_dates/, so a run that failed after a commit counts too) and "
        "landing_queries reports (metadata `arrival_dates`): one build_marts_job run per stretch "
        "of consecutive days, which then rebuilds the all-time marts and publishes "
        "the serving snapshot. While a build_marts_job run is queued or running, the dates wait "
        "in the cursor and go into the next request together. A date stays in the cursor until a "
        "build of it succeeds: failed builds are retried with back-off, then listed as stale "
        "(owed_builds.py)."
    ),
)
def build_marts_on_new_raw_batches(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    gone = fail_dead_runs(context.instance, context.log)
    days, new_seen = new_arrival_dates(context.instance, cursor.get("seen", {}), context.log)
    recorded, taken = take_owed_records(context.instance, cursor.get("taken", []), context.log)
    owed = OwedBuilds.from_cursor(cursor, now)
    owed.add({partition_for(day) for day in days | recorded}, now)
    owed.read_finished_builds(context.instance, build_marts_job.name)
    owed.alert_new_staleness(context.log, build_marts_job.name)
    publish_stale(context.instance, owed.stale())

    def next_cursor() -> dict[str, Any]:
        return {"seen": new_seen, "taken": taken, **owed.to_cursor()}

    def skip(*reasons: str) -> dg.SensorResult:
        live = live_mode_active(context.instance)  # it builds the dates of its own batches
        parts = gone + [r for r in reasons if r] + owed.describe() + ([live] if live else [])
        reason = "; ".join(parts) or "no new raw batches"
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(next_cursor()))

    # One build at a time: a batch lands every few seconds while a build takes longer, and a
    # run per batch would only queue up, each paying dbt's start-up and the all-time marts again.
    running = run_in_flight(context.instance, build_marts_job.name)
    if running is not None:
        waiting = len(owed.waiting())
        held = f"{waiting} arrival date(s) wait for build_marts_job run {running.run_id} to finish"
        return skip(held if waiting else "")
    owed.forget_lost_requests(now)
    partitions = owed.to_request(now)
    if not partitions:
        return skip()
    owed.mark_requested(partitions, now)
    stamp = "-".join(str(new_seen[k]) for k in sorted(new_seen)) + f".{owed.requests}"
    requests_ = daily_run_requests([date.fromisoformat(p) for p in partitions], stamp)
    return dg.SensorResult(run_requests=requests_, cursor=json.dumps(next_cursor()))


# --- run failures -> alert log and webhook -----------------------------------------------------


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes an alert line for every failed run and posts it to ALERT_WEBHOOK_URL if set.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    send_alert(
        "run_failure",
        context.failure_event.message or "",
        context.log,
        job=run.job_name,
        run_id=run.run_id,
        partition=run.tags.get("dagster/partition"),
    )


# --- all-time marts follow the daily partitions ------------------------------------------------

# Evaluates the automation condition the dbt translator gives the all-time models (leaderboard,
# table_ingest_gaps, table_workload): rebuild once the daily runs that changed them are done.
all_time_marts_automation = dg.AutomationConditionSensorDefinition(
    name="all_time_marts_automation",
    target=dg.AssetSelection.assets(dbt_all_time_models),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
)


# --- dbt builds -> the dashboards' serving snapshot ---------------------------------------------

# Evaluates serving_snapshot's automation condition (snapshot.PUBLISH_AFTER_DBT): publish once a
# dbt run has updated a served mart, one snapshot run at a time.
serving_snapshot_automation = dg.AutomationConditionSensorDefinition(
    name="serving_snapshot_automation",
    target=dg.AssetSelection.assets(serving_snapshot),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
)


# --- Kafka lag -> raw dump; landing files -> landing ingest ------------------------------------

@dg.sensor(
    name="kafka_lag_sensor",
    job_name="dump_kafka_job",
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Each tick reads the consumer group's committed offsets and the topic's high watermarks "
        "(it never commits). Lag > 0 and no raw run in flight: requests dump_kafka_job with "
        "run_key '<topic>:<partition>=<committed>-<high>,...' (the watermark tuple and where the "
        "group stands; '#retry-n' for the n-th request from the same committed offsets). After a failed "
        "run it backs off, and after REDSET_DUMP_MAX_ATTEMPTS failures it requests the dump in isolation "
        "mode (tag redset/isolate=true). Otherwise skips, naming the lag."
    ),
)
def kafka_lag_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.RunRequest | dg.SkipReason:
    fail_dead_runs(context.instance, context.log)  # a dump whose worker died is in flight no more
    topic, group = settings.topic(), settings.consumer_group()
    consumer = kafka.consumer(group)
    try:
        plan = offsets.partition_offsets(consumer, topic, timeout=10.0)
    except offsets.TopicMissing as exc:
        return dg.SkipReason(str(exc))
    except KafkaException as exc:
        return dg.SkipReason(f"cannot read offsets of {topic} for group {group}: {exc}")
    finally:
        close_within(consumer)  # auto-commit is off and nothing is assigned: closing commits nothing
    lag = offsets.total_lag(plan)
    previous = json.loads(context.cursor) if context.cursor else {}
    cursor = {"watermarks": offsets.watermark_key(topic, plan), "lag": lag}
    if lag == 0:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"lag 0: group {group} is caught up on {topic}")
    live = live_mode_active(context.instance)
    if live is not None:  # it consumes the group itself; a dump beside it would read the same offsets
        context.update_cursor(json.dumps({**previous, **cursor}))
        return dg.SkipReason(f"lag {lag:,} on {topic}, but {live}")
    running = raw_dump_in_flight(context.instance)
    if running is not None:
        context.update_cursor(json.dumps({**previous, **cursor}))
        return dg.SkipReason(f"lag {lag:,} on {topic}, but raw run {running.run_id} is still in flight")
    # Failed runs of the same offsets: back off, then isolate (dump/retries.py).
    result, state = dump_retries.next_dump(context.instance, previous, topic, plan, time.time())
    context.update_cursor(json.dumps({**cursor, **state}))
    return result


@dg.sensor(
    name="landing_file_sensor",
    job_name="ingest_landing_file_job",
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests one ingest_landing_file_job run per new file in the landing folder (or object in its "
        "s3:// prefix) once its size "
        "and mtime stay the same across two ticks (run_key: name, size and mtime; the cursor "
        "remembers them for the files still there; `.part` files are never taken). A file still "
        "there after its run failed or was cancelled is requested again as '<key>#retry-n', a few "
        "times; then an alert says the sensor gave up on it (touch the file to start over)."
    ),
)
def landing_file_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    fail_dead_runs(context.instance, context.log)  # a landing run whose worker died is asked for again
    folder = landing_location()  # a folder, or an s3:// prefix
    seen = json.loads(context.cursor) if context.cursor else {}
    requests_, cursor = landing_requests(context.instance, folder, seen, context.log)
    if not requests_:
        context.update_cursor(json.dumps(cursor, sort_keys=True))
        return dg.SkipReason(f"no new files in {folder}")
    return dg.SensorResult(run_requests=requests_, cursor=json.dumps(cursor, sort_keys=True))
