"""Hand-built hourly data on which each anomaly tag fires on exactly the hour built for it, built
once per pytest process (dbt_support.built_once) for test_workload_anomalies and test_evidence.

Three instances with eight quiet days (2024-03-01..08, 6 queries an hour, execution 100-160 ms,
no queue, spill or abort), then on 2024-03-08:
- P1: every query of 12:00 runs 5 s (an execution-time spike);
- P2: 10:00 queues 10 s per query (queue-bound), 11:00 spills 20 GB per query (heavy spill),
  12:00 aborts 4 of 6 queries (abort burst);
- S1: 14:00 has 30 queries, against hand-made forecast_history rows (made at 00:00) whose upper
  bound is 10 for the served model (load surge; another model's 100 is ignored, and so is a
  workload_forecasts row there with upper 100: the forecast made before the hour wins); 15:00 has
  30 too, but the served model's upper bound there is 100 (no surge; another model's 10 is ignored).
Each instance's rows come from its own Kafka partition (P1: 0, P2: 1, S1: 2), offsets in arrival
order, one raw file per partition and day (PARTITIONS, raw_file_name).
The all-time build runs first without the forecast tables (the model must build anyway; its tags
are kept in BEFORE), then again after the build writes forecast_history and workload_forecasts.
"""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_support import DbtPaths, built_once, kafka_rows, materialize_dbt, table, write_raw_file

P1, P2, S1 = ("provisioned", 1), ("provisioned", 2), ("serverless", 1)
FIRST_DAY = datetime(2024, 3, 1)
DAYS = 8
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
SPIKE = LAST_DAY.replace(hour=12)
QUEUED, SPILLED, ABORTED = LAST_DAY.replace(hour=10), LAST_DAY.replace(hour=11), LAST_DAY.replace(hour=12)
SURGE, NO_SURGE = LAST_DAY.replace(hour=14), LAST_DAY.replace(hour=15)


def hour_rows(instance: tuple[str, int], hour: datetime, n: int, first_id: int, **values: Any) -> list[dict[str, Any]]:
    deployment, instance_id = instance
    base = 100 + 10 * (hour.hour % 7)  # some spread from hour to hour: the MAD is not 0
    return [
        dict(
            deployment=deployment, instance_id=instance_id, query_id=first_id + i, user_id=1, database_id=1,
            arrival_timestamp=hour + timedelta(minutes=i), query_type="select", feature_fingerprint="fp",
            compile_duration_ms=0, queue_duration_ms=0, execution_duration_ms=base + i, was_aborted=False,
            was_cached=False, mbytes_scanned=10.0, mbytes_spilled=0.0, num_joins=0, num_scans=1,
            num_aggregations=0, num_permanent_tables_accessed=1,
            cluster_size=4.0 if deployment == "provisioned" else None,
        ) | values
        for i in range(n)
    ]


def dataset() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for instance in (P1, P2, S1):
        for h in range(DAYS * 24):
            hour = FIRST_DAY + timedelta(hours=h)
            qid = 1000 * h
            if instance == P1 and hour == SPIKE:
                rows += hour_rows(instance, hour, 6, qid, execution_duration_ms=5000)
            elif instance == P2 and hour == QUEUED:
                rows += hour_rows(instance, hour, 6, qid, queue_duration_ms=10_000)
            elif instance == P2 and hour == SPILLED:
                rows += hour_rows(instance, hour, 6, qid, mbytes_spilled=20_000.0)
            elif instance == P2 and hour == ABORTED:
                rows += hour_rows(instance, hour, 2, qid) + hour_rows(instance, hour, 4, qid + 2, was_aborted=True)
            elif instance == S1 and hour in (SURGE, NO_SURGE):
                rows += hour_rows(instance, hour, 30, qid)
            else:
                rows += hour_rows(instance, hour, 6, qid)
    return rows


PARTITIONS = {P1: 0, P2: 1, S1: 2}
TOPIC = "redset.queries"  # kafka_rows'
INGESTED = datetime(2024, 3, 9)


def delivered(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The rows as the raw dump writes them, per Kafka partition: offsets from 0 in arrival order."""
    out = {}
    for instance, partition in PARTITIONS.items():
        mine = [r for r in rows if (r["deployment"], r["instance_id"]) == instance]
        out[partition] = [dict(r, kafka_partition=partition) for r in kafka_rows(mine, 0, "b1", INGESTED)]
    return out


def raw_file_name(partition: int) -> str:
    return f"{TOPIC}-p{partition}-o0.parquet"


HISTORY = [
    # (instance, hour, model, forecast, upper)
    (S1, SURGE, "robust_seasonal", 6.0, 10.0),  # forecast.DEFAULT_MODEL, the served band
    (S1, SURGE, "seasonal_naive", 6.0, 100.0),
    (S1, NO_SURGE, "robust_seasonal", 6.0, 100.0),
    (S1, NO_SURGE, "seasonal_naive", 6.0, 10.0),
]
# Hindsight for SURGE (the history covers it) and an exec_hours band far below (not a query count).
AHEAD = [(S1, SURGE, "robust_seasonal", "queries", 50.0, 100.0), (S1, SURGE, "robust_seasonal", "exec_hours", 0.0, 0.0)]


def write_forecasts(warehouse) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table forecast_history (deployment varchar, instance_id bigint, hour timestamp, "
            "metric varchar, model varchar, origin timestamp, forecast double, lower double, upper double)"
        )
        con.execute(
            "create table workload_forecasts (deployment varchar, instance_id bigint, hour timestamp, "
            "metric varchar, model varchar, forecast double, lower double, upper double)"
        )
        for (deployment, instance_id), hour, model, forecast, upper in HISTORY:
            con.execute(
                "insert into forecast_history values (?, ?, ?, 'queries', ?, ?, ?, 0, ?)",
                [deployment, instance_id, hour, model, LAST_DAY, forecast, upper],
            )
            con.execute(
                "insert into forecast_history values (?, ?, ?, 'exec_hours', ?, ?, 0, 0, 0)",
                [deployment, instance_id, hour, model, LAST_DAY],
            )
        for (deployment, instance_id), hour, model, metric, forecast, upper in AHEAD:
            con.execute(
                "insert into workload_forecasts values (?, ?, ?, ?, ?, ?, 0, ?)",
                [deployment, instance_id, hour, metric, model, forecast, upper],
            )


BEFORE = "anomalies-before.pickle"


def build(paths: DbtPaths) -> None:
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

    for partition, rows in delivered(dataset()).items():
        write_raw_file(paths.raw_dir, rows, raw_file_name(partition))
    last = LAST_DAY.strftime("%Y-%m-%d")
    assert materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", last)).success
    assert materialize_dbt([dbt_all_time_models]).success
    (paths.raw_dir.parent / BEFORE).write_bytes(pickle.dumps(table(paths.warehouse, "workload_anomalies")))
    write_forecasts(paths.warehouse)
    assert materialize_dbt([dbt_all_time_models]).success


def anomalies_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder (raw zone, warehouse) with the data above built, made once per pytest process."""
    return built_once(tmp_path_factory, "anomalies", build)
