"""Incremental partitions: rows for one new day rebuild only that day, and equal a full refresh.

Generated rows for 2024-03-01..03 are built as one partition range. Then a batch arriving on
03-04 lands (with one query_id repeated from 03-03, which must stay out of clean_queries): the
sensor asks for exactly the 03-04 partition, that run touches nothing else, and every daily table
then equals a full refresh built from scratch into another warehouse. The stress index of 03-04
looks back into 03-03, so the equality also covers the look-back margin.
"""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dbt_support import (
    DAILY_MARTS,
    INCREMENTAL_NEW_DAY,
    copy_built,
    dbt_paths,
    first_days_built,
    incremental_rows,
    kafka_rows,
    materialize_dbt,
    table,
    write_raw_file,
)

from pipeline_assets import schema
from pipeline_assets.source import generator

pytestmark = pytest.mark.slow(seconds=60)

NEW_DAY = INCREMENTAL_NEW_DAY  # after the three days first_days_built builds


def rounded(row: dict) -> dict:
    """Floats to 6 decimals: a sum of doubles may differ in the last bit with the order of rows."""
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}


def snapshot(warehouse, before: date | None = None) -> dict[str, list[dict]]:
    where = f" where arrival_date < '{before}'" if before else ""
    return {name: [rounded(r) for r in table(warehouse, name + where)] for name in DAILY_MARTS}


def test_a_new_day_rebuilds_only_its_partition_and_matches_a_full_refresh(tmp_path, tmp_path_factory, monkeypatch):
    from pipeline_assets.orchestration.sensors import build_marts_on_new_raw_batches
    from pipeline_assets.raw import owed_dates
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models

    # 03-01..03 in the raw zone and built as one partition range: shared with other tests, copied.
    paths = copy_built(first_days_built(tmp_path_factory), monkeypatch, tmp_path / "incremental")
    old, new = incremental_rows()
    assert old.num_rows > 2000 and new.num_rows > 500
    with dg.instance_for_test() as instance:
        before = snapshot(paths.warehouse)
        assert {r["arrival_date"] for r in before["clean_queries"]} == {date(2024, 3, d) for d in (1, 2, 3)}

        # The new day's batch, plus a repeat of a 03-03 query_id delivered later on 03-04.
        repeat = next(r for r in old.to_pylist() if r["arrival_timestamp"].date() == date(2024, 3, 3))
        repeat = dict(repeat, arrival_timestamp=datetime(2024, 3, 4, 12, 0))
        batch = kafka_rows(new.to_pylist() + [repeat], old.num_rows, "b2", datetime(2024, 3, 5, 0, 5))
        write_raw_file(paths.raw_dir, batch, f"redset.queries-p0-o{old.num_rows}.parquet")
        owed_dates.record([NEW_DAY], "a-dump-run")  # what the dump records before its commit

        # The sensor asks for exactly the new day's partition ...
        tick = build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in tick.run_requests] == [NEW_DAY.isoformat()]
        second = materialize_dbt([dbt_daily_models], partition=tick.run_requests[0].partition_key, instance=instance)
        assert second.success
        assert {e.partition for e in second.get_asset_materialization_events()} == {NEW_DAY.isoformat()}

    # ... which leaves every earlier day as it was, and adds the new one.
    assert snapshot(paths.warehouse, before=NEW_DAY) == before
    clean_new_day = table(paths.warehouse, f"clean_queries where arrival_date = '{NEW_DAY}'")
    assert len(clean_new_day) == new.num_rows  # the repeated query_id stayed with its first delivery
    incremental = snapshot(paths.warehouse)

    # A full refresh into a fresh warehouse, from the same raw zone.
    full_paths = dbt_paths(monkeypatch, tmp_path / "full")
    monkeypatch.setenv("REDSET_RAW_DIR", str(paths.raw_dir))
    refreshed = materialize_dbt([dbt_daily_models], partition=NEW_DAY.isoformat(), full_refresh=True)
    assert refreshed.success
    full = snapshot(full_paths.warehouse)
    for name in DAILY_MARTS:
        assert incremental[name] == full[name], f"{name} differs from a full refresh"
    assert sum(r["queries"] for r in full["query_metrics"]) == old.num_rows + new.num_rows
