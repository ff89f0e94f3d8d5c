"""workload_anomalies on hand-built hourly data: each tag on exactly the hour built for it.

Three instances with eight quiet days (2024-03-01..08, 6 queries an hour, execution 100-160 ms,
no queue, spill or abort), then on 2024-03-08:
- P1: every query of 12:00 runs 5 s (an execution-time spike);
- P2: 10:00 queues 10 s per query (queue-bound), 11:00 spills 20 GB per query (heavy spill),
  12:00 aborts 4 of 6 queries (abort burst);
- S1: 14:00 has 30 queries, against hand-made forecast_history rows (made at 00:00) whose upper
  bound is 10 for the served model (load surge; another model's 100 is ignored, and so is a
  workload_forecasts row there with upper 100: the forecast made before the hour wins); 15:00 has
  30 too, but the served model's upper bound there is 100 (no surge; another model's 10 is ignored).
The all-time build runs first without the forecast tables (the model must build anyway), then again
after the test writes forecast_history and workload_forecasts into the warehouse.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import pytest
from dbt_support import dbt_paths, materialize_dbt, table, write_raw_file

pytestmark = pytest.mark.slow(seconds=60)

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
    return [
        row | dict(source_file="hand.parquet", source_row=i, batch_id="b1", ingested_at=datetime(2024, 3, 9))
        for i, row in enumerate(rows)
    ]


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


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """(anomalies without the forecast table, anomalies with it)."""
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

    with pytest.MonkeyPatch.context() as mp:
        paths = dbt_paths(mp, tmp_path_factory.mktemp("anomalies"))
        write_raw_file(paths.raw_dir, dataset(), "hand.parquet")
        last = LAST_DAY.strftime("%Y-%m-%d")
        assert materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", last)).success
        assert materialize_dbt([dbt_all_time_models]).success
        before = table(paths.warehouse, "workload_anomalies")
        write_forecasts(paths.warehouse)
        assert materialize_dbt([dbt_all_time_models]).success
        yield before, table(paths.warehouse, "workload_anomalies")


def tagged(rows: list[dict[str, Any]]) -> set[tuple[str, int, datetime, str]]:
    return {(r["deployment"], r["instance_id"], r["hour"], r["tag"]) for r in rows}


def test_each_tag_fires_on_exactly_its_hour(built):
    _, after = built
    assert tagged(after) == {
        (*P1, SPIKE, "exec_spike"),
        (*P2, QUEUED, "queue_bound"),
        (*P2, SPILLED, "heavy_spill"),
        (*P2, ABORTED, "abort_burst"),
        (*S1, SURGE, "load_surge"),
    }


def test_without_forecasts_the_model_builds_the_other_tags(built):
    before, after = built
    assert tagged(before) == tagged(after) - {(*S1, SURGE, "load_surge")}


def test_values_baselines_and_thresholds(built):
    _, after = built
    by_tag = {r["tag"]: r for r in after}
    spike = by_tag["exec_spike"]
    assert spike["value"] == pytest.approx(5000.0)
    # The 168 hours before: p95 = base + 4.75 ms, bases 100/110/120 on 28 hours each, 130..160 on
    # 21 each; the median of the logs falls between 124.75 and 134.75 ms: their geometric mean.
    assert spike["baseline"] == pytest.approx(((1 + 124.75) * (1 + 134.75)) ** 0.5 - 1)
    assert spike["baseline"] < spike["threshold"] < spike["value"]
    assert by_tag["heavy_spill"]["value"] == pytest.approx(120_000.0)
    assert by_tag["heavy_spill"]["threshold"] == pytest.approx(102_400.0)  # the floor: the baseline is 0 MB
    assert by_tag["queue_bound"]["value"] == pytest.approx(60_000 / (60_000 + 6 * 130 + 15))
    assert by_tag["abort_burst"]["value"] == 4
    assert by_tag["abort_burst"]["baseline"] == pytest.approx(0.0)
    surge = by_tag["load_surge"]
    assert (surge["value"], surge["baseline"], surge["threshold"]) == (30.0, 6.0, 12.5)  # 1.25 x the served upper
    assert "30 queries" in surge["detail"] and "robust_seasonal" in surge["detail"]
