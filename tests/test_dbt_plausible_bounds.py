"""The implausible-value rule at its edges: for every bounded column (dbt var plausible_bounds), a
row at the lower and the upper bound is clean, a row just outside either is quarantined as
`implausible_value: <column>`; NULL passes, NaN and infinity do not."""

from __future__ import annotations

import math
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
from dbt_support import dbt_paths, park, query, ts, write_raw_file

from pipeline_assets import schema
from pipeline_assets.warehouse.dbt_assets import project_var

pytestmark = pytest.mark.slow

DAY = "2024-03-01"
BASE: dict[str, Any] = {
    "deployment": "provisioned", "instance_id": 1, "cluster_size": 4.0, "user_id": 1, "database_id": 1,
    "arrival_timestamp": ts(f"{DAY} 12:00:00"), "compile_duration_ms": 10, "queue_duration_ms": 0,
    "execution_duration_ms": 100, "query_type": "select", "was_aborted": False, "was_cached": False,
    "num_permanent_tables_accessed": 1, "num_external_tables_accessed": 0, "num_system_tables_accessed": 0,
    "mbytes_scanned": 10.0, "mbytes_spilled": 0.0, "num_joins": 0, "num_scans": 1, "num_aggregations": 0,
    "kafka_topic": "redset.queries", "kafka_partition": 0, "batch_id": "b1", "ingested_at": ts("2024-03-02 00:00:00"),
}  # fmt: skip
BOUNDS: dict[str, list[float]] = project_var("plausible_bounds")


def cases() -> list[tuple[dict[str, Any], str | None]]:
    """(column values, expected reason or None for clean)."""
    found: list[tuple[dict[str, Any], str | None]] = []
    for column, (low, high) in BOUNDS.items():
        reason = f"implausible_value: {column}"
        found += [({column: low}, None), ({column: high}, None), ({column: None}, None)]
        # Below 0 a duration breaks an earlier rule, negative_duration.
        below = "negative_duration" if column.endswith("_duration_ms") else reason
        found += [({column: low - 1}, below), ({column: high + 1}, reason)]
    for weird in (math.nan, math.inf, -math.inf):
        found.append(({"mbytes_spilled": weird}, "implausible_value: mbytes_spilled"))
    # Two columns out of bounds: the first in the var's order is named.
    found.append(({"num_aggregations": -1, "mbytes_scanned": 1e30, "queue_duration_ms": 2_592_000_001},
                  "implausible_value: queue_duration_ms"))  # fmt: skip
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The cases as one raw file, staged and judged by dbt (stg_queries, clean, quarantine, tie-out)."""
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models, dbt_resource

    with pytest.MonkeyPatch.context() as mp:
        paths = dbt_paths(mp, tmp_path_factory.mktemp("dbt_bounds"))
        rows = [dict(BASE, query_id=i, kafka_offset=i, **values) for i, (values, _) in enumerate(cases())]
        write_raw_file(paths.raw_dir, rows, "redset.queries-p0-o0.parquet")
        result = dg.materialize(
            [dbt_daily_models],
            selection=["stg_query_deliveries", "stg_queries", "clean_queries", "quarantine_queries"],
            partition_key=DAY,
            resources={"dbt": dbt_resource},
        )
        assert result.success
        yield park(mp, paths), result


def test_every_numeric_column_but_the_ids_is_bounded():
    numeric = {c.name for c in schema.COLUMNS if pa.types.is_integer(c.type) or pa.types.is_floating(c.type)}
    ids = {"instance_id", "user_id", "database_id", "query_id", "cache_source_query_id"}  # labels, not measures
    assert set(BOUNDS) == numeric - ids
    # In the schema's column order, so the first column named is the first out of bounds in a row.
    assert list(BOUNDS) == [c.name for c in schema.COLUMNS if c.name in BOUNDS]


def test_the_bounds_are_the_documented_ones():
    assert BOUNDS["mbytes_scanned"] == [0, 1_073_741_824]  # 1 PB in MB
    assert BOUNDS["execution_duration_ms"] == [0, 30 * 24 * 3600 * 1000]
    assert list(BOUNDS)[:4] == ["cluster_size", "compile_duration_ms", "queue_duration_ms", "execution_duration_ms"]


def test_each_bound_quarantines_just_outside_and_keeps_the_bound_itself(built):
    paths, result = built
    got = dict(query(paths.warehouse, "select query_id, reason from quarantine_queries"))
    expected = {i: reason for i, (_, reason) in enumerate(cases()) if reason is not None}
    assert got == expected
    clean = {i for (i,) in query(paths.warehouse, "select query_id from clean_queries")}
    assert clean == {i for i, (_, reason) in enumerate(cases()) if reason is None}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["staged_rows_tie_out"] is True
    assert checks["accepted_values_quarantine_queries_reason___quarantine_reasons_"] is True


def test_the_bound_values_reach_clean_queries_unchanged(built):
    paths, _ = built
    high = BOUNDS["mbytes_scanned"][1]
    assert query(paths.warehouse, f"select count(*) from clean_queries where mbytes_scanned = {high}") == [(1,)]
    assert query(paths.warehouse, "select max(execution_duration_ms) from clean_queries") == [(2_592_000_000,)]
