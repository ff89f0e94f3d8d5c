"""A new day, built as the sensor and live mode build it (that day's partition, then the all-time
marts), leaves every model exactly as a full build of all days does.

The models this covers read only the new day's rows on such a run: query_repeats (incremental: the
earlier dates come from its own rows, and from the earlier queries the new day's cached rows name
as source), the daily inputs daily_table_usage and hourly_workload_mix, and the all-time marts fed
by them (tail_concentration, table_workload, weekly_workload_drift, workload_anomalies). The new
day holds a cached row whose source query arrived the day before, and repeats of earlier days'
queries, so both of query_repeats' looks back are used.

The full build is one plain `dbt build` of every model (no partition window: every date), outside
Dagster, into an emptied warehouse: the reference the Dagster runs must equal.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dbt_support import (
    INCREMENTAL_NEW_DAY,
    copy_built,
    first_days_built,
    incremental_rows,
    kafka_rows,
    materialize_dbt,
    query,
    table,
    write_raw_file,
)

from worker_warehouse import worker_warehouse

from pipeline_assets import schema, settings
from pipeline_assets.source import generator

pytestmark = pytest.mark.slow(seconds=90)

NEW_DAY = INCREMENTAL_NEW_DAY  # after the three days first_days_built builds
MODELS = (
    "query_repeats",
    "daily_query_repetition",
    "daily_table_usage",
    "hourly_workload_mix",
    "fleet_query_repetition",
    "cache_opportunity_leaderboard",
    "tail_concentration",
    "table_workload",
    "weekly_workload_drift",
    "workload_anomalies",
    "leaderboard",
)


def rounded(row: dict) -> dict:
    """Floats to 9 significant digits: a sum of doubles may differ in the last bit with the order of rows."""
    return {k: float(f"{v:.9g}") if isinstance(v, float) else v for k, v in row.items()}


def snapshot(warehouse) -> dict[str, list[dict]]:
    return {name: [rounded(r) for r in table(warehouse, name)] for name in MODELS}


def source_rows() -> tuple[list[dict], list[dict]]:
    """Generated rows of 2024-03-01..03 and of the new day, plus on the new day a cached row
    answered from a select of 03-03."""
    old, new = (t.to_pylist() for t in incremental_rows())
    source = next(r for r in reversed(old) if r["query_type"] == "select" and r["feature_fingerprint"] and not r["was_aborted"])
    cached = dict(source, query_id=source["query_id"] + 10**9, was_cached=True, cache_source_query_id=source["query_id"],
                  num_scans=None, num_joins=None, read_table_ids=None, query_type="other",
                  arrival_timestamp=datetime.combine(NEW_DAY, datetime.min.time()) + timedelta(minutes=1))  # fmt: skip
    return old, [*new, cached]


def dbt_build_every_date(warehouse) -> None:
    """`dbt build` of the whole project on every date, in the environment Dagster gives dbt."""
    from pipeline_assets.warehouse import duckdb_limits, parse_state
    from pipeline_assets.warehouse.dbt_assets import build_args, dbt_env, dbt_resource, dbt_target, release_warehouse

    env = dbt_env(None) | duckdb_limits.dbt_env(duckdb_limits.check_temp_space())
    assert env["REDSET_WAREHOUSE"] == str(warehouse)
    with settings.environment(env):
        target_path = parse_state.new_target_path("full-build")
        with parse_state.around(target_path, dbt_target()):  # this profile's partial parse: the runs' own
            invocation = dbt_resource.cli(build_args(full_refresh=False), target_path=target_path)
            try:
                invocation.wait()
            finally:
                release_warehouse(invocation)
    shutil.rmtree(invocation.target_path, ignore_errors=True)  # kept only when it failed (dbt.log)


def test_a_new_day_then_the_all_time_marts_equal_a_full_build(tmp_path, tmp_path_factory, monkeypatch):
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

    old, new = source_rows()
    # The old days in the raw zone, built as the range 2024-03-01..03: shared with other tests, copied.
    # (No all-time build before the new day: those marts are tables rebuilt whole, which the run
    # after the new day replaces without reading.)
    paths = copy_built(first_days_built(tmp_path_factory), monkeypatch, tmp_path / "incremental")
    with dg.instance_for_test() as instance:
        write_raw_file(paths.raw_dir, kafka_rows(new, len(old), "b2", datetime(2024, 3, 5, 0, 5)),
                       f"redset.queries-p0-o{len(old)}.parquet")  # fmt: skip
        assert materialize_dbt([dbt_daily_models], partition=NEW_DAY.isoformat(), instance=instance).success
        assert materialize_dbt([dbt_all_time_models], instance=instance).success
    incremental = snapshot(paths.warehouse)

    # The looks back were needed: the new day's cached row took its 03-03 source's key, and some
    # of the new day's queries repeat a query of an earlier day.
    [(key,)] = query(paths.warehouse, f"select repeat_key from query_repeats where query_id = {new[-1]['query_id']}")
    assert key is not None
    [(across_days,)] = query(paths.warehouse, f"""
        select count(*) from query_repeats
        where arrival_date = '{NEW_DAY}' and cast(previous_arrival as date) < '{NEW_DAY}'""")  # fmt: skip
    assert across_days > 0

    # The same raw zone built from scratch: the warehouse emptied, the environment unchanged.
    assert worker_warehouse() == paths.warehouse
    dbt_build_every_date(paths.warehouse)
    full = snapshot(paths.warehouse)
    for name in MODELS:
        assert full[name], f"{name} is empty: nothing compared"
        assert incremental[name] == full[name], f"{name} differs from a full build"
