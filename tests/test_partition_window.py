"""A partition's delete-and-insert replaces exactly its own dates (dbt_project/macros/partition_window.sql).

Three days (2024-03-01..03) are built as one range. Then the raw file of the middle day changes
(one query removed, one added) and only the 2024-03-02 partition is rebuilt: in every daily table
that day's rows change as the raw data did, the other two days are the same row for row, and a row
put by hand into 2024-03-03 of clean_queries survives (the delete never reached that date).
daily_table_ingest_gaps is left out: it rewrites rows of other dates by key, on purpose.
"""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import duckdb
import pytest
from dbt_support import DAILY_MARTS, dbt_paths, kafka_rows, materialize_dbt, table, write_raw_file

from pipeline_assets import schema
from pipeline_assets.source import generator

pytestmark = pytest.mark.slow(seconds=45)

DAILY_TABLES = ("stg_queries", *DAILY_MARTS)
DAYS = (date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3))
MIDDLE = DAYS[1]
RAW_FILE = "redset.queries-p0-o0.parquet"
INJECTED_QUERY_ID = 999_999_999


def by_date(warehouse) -> dict[tuple[str, date], list[dict]]:
    """Every row of every daily table, grouped by (table, arrival_date)."""
    grouped: dict[tuple[str, date], list[dict]] = {}
    for name in DAILY_TABLES:
        for row in table(warehouse, name):
            grouped.setdefault((name, row["arrival_date"]), []).append(row)
    return grouped


def key(row: dict) -> tuple:
    return row["deployment"], row["instance_id"], row["query_id"]


def test_rebuilding_a_day_replaces_exactly_that_day(tmp_path, monkeypatch):
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models

    paths = dbt_paths(monkeypatch, tmp_path / "window")
    rows = generator.generate(rows=600, seed=11, deployment="both", start=DAYS[0], days=3)
    rows = rows.select(list(schema.COLUMN_NAMES)).to_pylist()
    ingested = datetime(2024, 3, 4, 0, 5)
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", ingested), RAW_FILE)

    with dg.instance_for_test() as instance:
        assert materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", "2024-03-03"), instance=instance).success

        # A row nobody's raw data holds, on another date of the incremental table.
        with duckdb.connect(str(paths.warehouse)) as connection:
            connection.execute(
                f"insert into clean_queries select * replace ({INJECTED_QUERY_ID} as query_id) "
                f"from clean_queries where arrival_date = '{DAYS[2]}' order by all limit 1"
            )
        before = by_date(paths.warehouse)
        clean_middle = {key(r) for r in before["clean_queries", MIDDLE]}
        assert all(before.get((name, day)) for name in ("clean_queries", "query_metrics") for day in DAYS)

        # The middle day's raw data changes: one clean query goes, one new query comes.
        middle = [r for r in rows if r["arrival_timestamp"].date() == MIDDLE]
        counts = {}
        for r in rows:
            counts[key(r)] = counts.get(key(r), 0) + 1
        removed = next(r for r in middle if key(r) in clean_middle and counts[key(r)] == 1)
        added = dict(removed, query_id=INJECTED_QUERY_ID + 1, execution_duration_ms=(removed["execution_duration_ms"] or 0) + 1000)
        changed = [r for r in middle if r is not removed] + [added]
        write_raw_file(paths.raw_dir, kafka_rows(changed, 10_000, "b2", ingested), RAW_FILE)

        assert materialize_dbt([dbt_daily_models], partition=MIDDLE.isoformat(), instance=instance).success
        after = by_date(paths.warehouse)

    # The other days: the same rows, byte for byte, the injected one included.
    for name in DAILY_TABLES:
        for day in (DAYS[0], DAYS[2]):
            assert after.get((name, day)) == before.get((name, day)), (name, day)
    assert INJECTED_QUERY_ID in {r["query_id"] for r in after["clean_queries", DAYS[2]]}

    # The middle day: exactly the raw change.
    assert {key(r) for r in after["clean_queries", MIDDLE]} == clean_middle - {key(removed)} | {key(added)}
    assert len(after["stg_queries", MIDDLE]) == len(before["stg_queries", MIDDLE])
    assert after["query_metrics", MIDDLE] != before["query_metrics", MIDDLE]


def test_window_env_is_the_partition_range():
    from pipeline_assets.warehouse.dbt_assets import window_env

    window = dg.TimeWindow(datetime(2024, 3, 2), datetime(2024, 3, 5))
    assert window_env(window) == {"REDSET_MIN_DATE": "2024-03-02", "REDSET_MAX_DATE": "2024-03-04"}
    assert window_env(None) == {"REDSET_MIN_DATE": "", "REDSET_MAX_DATE": ""}

