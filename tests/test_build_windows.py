"""A long partition range is built in bounded windows of days (pipeline_assets/warehouse/build_windows.py),
and that changes nothing in the warehouse: every model equals the range built in one go."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt_support import dbt_paths, kafka_rows, materialize_dbt, query, table, write_raw_file
from worker_warehouse import worker_warehouse

from pipeline_assets import schema
from pipeline_assets.source import generator
from pipeline_assets.warehouse import build_windows

D = date.fromisoformat


def test_plan_fills_windows_up_to_the_row_cap_in_date_order():
    rows = {D("2024-03-01"): 40, D("2024-03-02"): 50, D("2024-03-03"): 30, D("2024-03-05"): 200, D("2024-03-06"): 10}
    windows = build_windows.plan(D("2024-03-01"), D("2024-03-07"), rows, max_rows=100)
    assert windows == [
        (D("2024-03-01"), D("2024-03-02")),  # 90
        (D("2024-03-03"), D("2024-03-04")),  # 30 (+ an empty day)
        (D("2024-03-05"), D("2024-03-05")),  # one day alone over the cap
        (D("2024-03-06"), D("2024-03-07")),
    ]
    assert build_windows.plan(D("2024-03-01"), D("2024-03-07"), rows, max_rows=0) == [(D("2024-03-01"), D("2024-03-07"))]
    assert build_windows.plan(D("2024-03-02"), D("2024-03-02"), rows, max_rows=1) == [(D("2024-03-02"), D("2024-03-02"))]
    with pytest.raises(ValueError, match="ends before it starts"):
        build_windows.plan(D("2024-03-02"), D("2024-03-01"), rows, max_rows=100)


def check(name: str, passed: bool) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key="clean_queries", check_name=name, passed=passed)


def test_an_earlier_windows_failure_is_not_reported_as_passed():
    held = build_windows.CheckResults()
    assert held.hold([check("a", False), check("b", True), dg.Output(None, "clean_queries")], "03-01..03-02") == (1, 2)
    merged = list(held.merge([check("a", True), check("b", True)]))
    assert [(c.check_name, c.passed) for c in merged] == [("a", False), ("b", True)]
    assert merged[0].metadata["failed in window"].value == "03-01..03-02"


def comparable(value):
    """Floats to 9 significant digits: a sum of doubles may differ in the last bit with the order of rows."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def all_tables(warehouse) -> dict[str, list[dict]]:
    names = [n for (n,) in query(warehouse, "select table_name from information_schema.tables order by 1")]
    return {n: [{k: comparable(v) for k, v in r.items()} for r in table(warehouse, n)] for n in names}


@pytest.mark.slow(seconds=85)
def test_a_range_built_in_windows_equals_the_range_built_at_once(tmp_path, monkeypatch):
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

    rows = generator.generate(rows=3000, seed=11, deployment="both", start=D("2024-03-01"), days=4)
    rows = rows.select(list(schema.COLUMN_NAMES)).to_pylist()
    built, windows_logged = {}, {}
    # One raw zone for both builds (the same environment: dbt keeps its partial parse).
    paths = dbt_paths(monkeypatch, tmp_path)
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", datetime(2024, 3, 5)), "redset.queries-p0-o0.parquet")
    # 826, 617, 716 and 841 rows a day: a cap of 1600 makes two windows of two days each.
    per_day = build_windows.rows_per_day(paths.raw_dir)
    assert build_windows.plan(D("2024-03-01"), D("2024-03-04"), per_day, 1600) == [
        (D("2024-03-01"), D("2024-03-02")), (D("2024-03-03"), D("2024-03-04"))]  # fmt: skip
    for name, window_rows in (("at_once", "0"), ("windows", "1600")):
        assert worker_warehouse() == paths.warehouse  # emptied: each build starts from nothing
        monkeypatch.setenv("REDSET_DBT_WINDOW_ROWS", window_rows)
        with dg.instance_for_test() as instance:
            daily = materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", "2024-03-04"), instance=instance)
            assert daily.success
            assert materialize_dbt([dbt_all_time_models], instance=instance).success
            logged = [e.message for e in instance.all_logs(daily.run_id) if "window " in (e.message or "")]
            materialized = instance.get_materialized_partitions(dg.AssetKey("stress_index"))
        assert materialized == {"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"}
        built[name] = all_tables(paths.warehouse)
        windows_logged[name] = logged
    assert len(built["at_once"]) >= 20
    for name, at_once in built["at_once"].items():
        assert built["windows"][name] == at_once, f"{name} differs when the range is built in windows"
    assert built["at_once"]["stress_index"], "nothing compared"
    # The earlier window (the last one's events are the run's).
    assert windows_logged["at_once"] == []
    assert [m.split(":")[0] for m in windows_logged["windows"]] == ["window 1/2 2024-03-01..2024-03-02"]


def test_only_the_ranges_days_are_counted_and_one_day_is_never_split(tmp_path):
    for day, rows in (("2024-03-01", 3), ("2024-03-02", 5), ("2024-03-09", 7)):
        folder = tmp_path / f"arrival_date={day}"
        folder.mkdir()
        pq.write_table(pa.table({"x": list(range(rows))}), folder / "f.parquet")
    assert build_windows.rows_per_day(tmp_path) == {D("2024-03-01"): 3, D("2024-03-02"): 5, D("2024-03-09"): 7}
    assert build_windows.rows_per_day(tmp_path, D("2024-03-02"), D("2024-03-08")) == {D("2024-03-02"): 5}
    start = datetime(2024, 3, 1)
    one_day = dg.TimeWindow(start, datetime(2024, 3, 2))
    assert build_windows.time_windows(one_day, tmp_path, max_rows=1) == [one_day]
    two_days = dg.TimeWindow(start, datetime(2024, 3, 3))
    assert build_windows.time_windows(two_days, tmp_path, max_rows=4) == [
        dg.TimeWindow(start, datetime(2024, 3, 2)), dg.TimeWindow(datetime(2024, 3, 2), datetime(2024, 3, 3))]
