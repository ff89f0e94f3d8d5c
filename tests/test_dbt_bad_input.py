"""Bad input the first rules missed (issue 22, item 8): each is quarantined with its reason, or
kept from steering the schedule, instead of reaching the marts."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dbt_support import dbt_paths, park, query, ts, write_raw_file

from pipeline_assets import schema
from pipeline_assets.orchestration.schedules import daily_marts_schedule, latest_complete_day
from pipeline_assets.warehouse.dbt_assets import project_var

pytestmark = pytest.mark.slow

DAY = "2024-03-01"
MAX_IDS = 5  # REDSET_MAX_TABLE_IDS for this module
BASE: dict[str, Any] = {
    "deployment": "provisioned", "instance_id": 1, "cluster_size": 4.0, "user_id": 1, "database_id": 1,
    "arrival_timestamp": ts(f"{DAY} 12:00:00"), "compile_duration_ms": 10, "queue_duration_ms": 0,
    "execution_duration_ms": 100, "query_type": "select", "was_aborted": False, "was_cached": False,
    "num_permanent_tables_accessed": 1, "num_external_tables_accessed": 0, "num_system_tables_accessed": 0,
    "mbytes_scanned": 10.0, "mbytes_spilled": 0.0, "num_joins": 0, "num_scans": 1, "num_aggregations": 0,
    "kafka_topic": "redset.queries", "kafka_partition": 0, "kafka_timestamp": ts(f"{DAY} 13:00:00"),
    "batch_id": "b1", "ingested_at": ts("2026-12-01 00:00:00"),
}  # fmt: skip
CASES: list[tuple[dict[str, Any], str | None]] = [  # (values, expected reason; None: clean)
    ({}, None),
    ({"deployment": "dedicated"}, "unknown_deployment"),
    ({"deployment": "Provisioned "}, "unknown_deployment"),
    # Produced at 13:00 and said to arrive at 12:30 the same day: fine; at 13:30: in the future,
    # though long before the build's clock.
    ({"arrival_timestamp": ts(f"{DAY} 12:30:00")}, None),
    ({"arrival_timestamp": ts(f"{DAY} 13:30:00")}, "arrival_out_of_span"),
    ({"arrival_timestamp": ts(f"{DAY} 13:00:00")}, None),  # the same instant is not the future
    # A landing row (no Kafka timestamp) is judged against when it was ingested.
    ({"kafka_timestamp": None, "ingested_at": ts(f"{DAY} 11:50:00")}, "arrival_out_of_span"),
    ({"kafka_timestamp": None, "ingested_at": ts(f"{DAY} 12:10:00")}, None),
    ({"read_table_ids": ",".join(map(str, range(MAX_IDS)))}, None),
    ({"read_table_ids": ",".join(map(str, range(MAX_IDS + 1)))}, "too_many_table_ids"),
    ({"write_table_ids": "7," * 200_000 + "7"}, "too_many_table_ids"),
    ({"read_table_ids": ",".join(["1"] * 200_000)}, "too_many_table_ids"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models, dbt_resource

    with pytest.MonkeyPatch.context() as mp:
        paths = dbt_paths(mp, tmp_path_factory.mktemp("dbt_bad_input"))
        mp.setenv("REDSET_MAX_TABLE_IDS", str(MAX_IDS))
        rows = [dict(BASE, query_id=i, kafka_offset=i, **values) for i, (values, _) in enumerate(CASES)]
        write_raw_file(paths.raw_dir, rows, "redset.queries-p0-o0.parquet")
        result = dg.materialize(
            [dbt_daily_models],
            selection=["stg_query_deliveries", "stg_queries", "clean_queries", "quarantine_queries",
                       "flattened_table_access"],
            partition_key=DAY,
            resources={"dbt": dbt_resource},
        )  # fmt: skip
        assert result.success
        yield park(mp, paths)


def test_unknown_deployment_future_arrival_and_table_id_fan_out_are_quarantined(built):
    got = dict(query(built.warehouse, "select query_id, reason from quarantine_queries"))
    clean = {q for (q,) in query(built.warehouse, "select query_id from clean_queries")}
    expected = {i: reason for i, (_, reason) in enumerate(CASES) if reason is not None}
    assert got == expected
    assert clean == {i for i, (_, reason) in enumerate(CASES) if reason is None}


def test_a_quarantined_table_id_list_is_not_fanned_out(built):
    [(rows, most)] = query(built.warehouse, "select count(*), max(table_id) from flattened_table_access")
    assert (rows, most) == (MAX_IDS, MAX_IDS - 1)  # only the clean row's five tables


def test_the_rules_know_the_schemas_deployments():
    assert project_var("deployments") == list(schema.DEPLOYMENTS)


def test_a_row_dated_9999_does_not_move_the_latest_complete_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDSET_RAW_DIR", str(tmp_path))
    for day in ("2024-03-04", "2024-03-05", "9999-12-31"):
        (tmp_path / f"arrival_date={day}").mkdir()
        (tmp_path / f"arrival_date={day}" / "t-p0-o0-9.parquet").write_bytes(b"")
    assert latest_complete_day(tmp_path) == date(2024, 3, 4)
    with dg.instance_for_test() as instance, dg.build_schedule_context(instance=instance) as context:
        assert daily_marts_schedule(context).partition_key == "2024-03-04"
