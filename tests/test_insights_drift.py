"""weekly_workload_drift and tail_concentration on a hand-built raw zone, values worked out by hand.

Instances: P1 = provisioned:1 (six weeks, one of them empty), P2 = provisioned:2 (150 queries,
three tied at the top), S1 = serverless:1 (one heavy query). Weeks start on Monday:
W0 = 2024-02-26 (data from Friday 03-01), W1 = 03-04, W2 = 03-11, W3 = 03-18 (empty),
W4 = 03-25, W5 = 04-01.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from dbt_support import dbt_paths, materialize_dbt, park, query, ts, write_raw_file

pytestmark = pytest.mark.slow(seconds=40)

P1, P2, S1 = ("provisioned", 1), ("provisioned", 2), ("serverless", 1)
W0, W1, W2, W3, W4, W5 = (date(2024, 2, 26), date(2024, 3, 4), date(2024, 3, 11), date(2024, 3, 18),
                          date(2024, 3, 25), date(2024, 4, 1))  # fmt: skip

_offsets = iter(range(1_000_000))


def q(query_id: int, instance: tuple[str, int], at: str, query_type: str, **values: Any) -> dict[str, Any]:
    deployment, instance_id = instance
    row = {
        "deployment": deployment, "instance_id": instance_id, "query_id": query_id, "user_id": 1,
        "arrival_timestamp": ts(at), "query_type": query_type, "execution_duration_ms": 100,
        "mbytes_scanned": 10.0, "was_aborted": False, "was_cached": False,
        "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": next(_offsets), "kafka_timestamp": ts(at),
        "batch_id": "b", "ingested_at": ts("2024-04-10 00:00:00"),
    }  # fmt: skip
    row.update(values)
    return row


# fmt: off
P1_ROWS = [
    # W0: select 1/2, insert 1/2; every scan under 1 GB.
    q(1, P1, "2024-03-01 10:00:00", "select", user_id=1, execution_duration_ms=600, read_table_ids="10,11"),
    q(2, P1, "2024-03-02 10:00:00", "select", user_id=1, read_table_ids="10"),
    q(3, P1, "2024-03-03 10:00:00", "insert", user_id=2, write_table_ids="10"),  # a write: no table time
    q(4, P1, "2024-03-03 11:00:00", "insert", user_id=2),
    # W1: the same mix -> distance 0.
    q(5, P1, "2024-03-05 10:00:00", "select", user_id=2),
    q(6, P1, "2024-03-10 23:59:59", "insert", user_id=2),  # Sunday: still W1
    # W2: only copies, scanning 1 GB and up -> disjoint types and buckets, distance 1.
    q(7, P1, "2024-03-11 00:00:00", "copy", user_id=3, mbytes_scanned=1024.0),
    q(8, P1, "2024-03-12 10:00:00", "copy", user_id=3, mbytes_scanned=10239.5),
    # W3: nothing. W4: select 3/4, insert 1/4.
    q(9, P1, "2024-03-26 10:00:00", "select", user_id=3),
    q(10, P1, "2024-03-26 11:00:00", "select", user_id=3),
    q(11, P1, "2024-03-27 10:00:00", "select", user_id=3),
    q(12, P1, "2024-03-28 10:00:00", "insert", user_id=3),
    # W5: select 1/2 and a new copy 1/2 (insert gone); one scan unknown (NULL MB).
    q(13, P1, "2024-04-02 10:00:00", "select", user_id=3, execution_duration_ms=None, mbytes_scanned=None),
    q(14, P1, "2024-04-02 11:00:00", "copy", user_id=None),
]
# 150 queries (top 1% = 2): three tied at 5000 ms, the rest 100 ms.
P2_ROWS = [
    q(1000 + i, P2, f"2024-03-05 {i // 60:02d}:{i % 60:02d}:00", "select", user_id=5,
      execution_duration_ms=5000 if i < 3 else 100)
    for i in range(150)
]
S1_ROWS = [q(1, S1, "2024-03-06 10:00:00", "ctas", user_id=1, execution_duration_ms=1_000_000, mbytes_scanned=1048576.0)]
# fmt: on


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

    with pytest.MonkeyPatch.context() as mp:
        paths = dbt_paths(mp, tmp_path_factory.mktemp("dbt_drift"))
        write_raw_file(paths.raw_dir, P1_ROWS + P2_ROWS + S1_ROWS, "t-p0-o0.parquet")
        result = materialize_dbt([dbt_daily_models, dbt_all_time_models], partition_range=("2024-02-29", "2024-05-31"))
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        yield park(mp, paths).warehouse, checks


def js_distance(p: dict[str, float], q: dict[str, float]) -> float:
    """Jensen-Shannon distance, base 2, written out independently of the SQL."""
    keys = set(p) | set(q)
    m = {k: (p.get(k, 0) + q.get(k, 0)) / 2 for k in keys}
    kl = lambda a: sum(a[k] * math.log2(a[k] / m[k]) for k in a if a[k] > 0)  # noqa: E731
    return math.sqrt((kl(p) + kl(q)) / 2)


def drift(warehouse, instance: tuple[str, int]) -> dict[date, dict[str, Any]]:
    rows = query(warehouse, f"""
        select week_start, previous_week_start, queries, previous_queries, query_type_js_distance,
            top_changed_query_type, top_changed_query_type_share_change, scan_bucket_js_distance,
            top_changed_scan_bucket, top_changed_scan_bucket_share_change
        from weekly_workload_drift where deployment = '{instance[0]}' and instance_id = {instance[1]} order by week_start
    """)  # fmt: skip
    names = ["week_start", "previous_week_start", "queries", "previous_queries", "type_js", "top_type", "type_change",
             "scan_js", "top_bucket", "bucket_change"]  # fmt: skip
    return {row[0]: dict(zip(names, row)) for row in rows}


def test_the_dbt_tests_of_both_marts_pass(warehouse):
    _, checks = warehouse
    mine = {name: passed for name, passed in checks.items() if "workload_drift" in name or "tail_concentration" in name}
    assert len(mine) >= 15
    assert all(mine.values()), mine


def test_every_week_of_the_instance_has_a_row_starting_on_monday(warehouse):
    weeks = drift(warehouse[0], P1)
    assert list(weeks) == [W0, W1, W2, W3, W4, W5]
    assert [w["queries"] for w in weeks.values()] == [4, 2, 2, 0, 4, 2]
    assert [w["previous_queries"] for w in weeks.values()] == [0, 4, 2, 2, 0, 4]
    assert weeks[W2]["previous_week_start"] == W1


def test_weeks_without_queries_on_either_side_have_no_distance(warehouse):
    weeks = drift(warehouse[0], P1)
    for week in (W0, W3, W4):  # nothing before W0, W3 empty, W4 follows the empty W3
        assert weeks[week]["type_js"] is None and weeks[week]["scan_js"] is None, week
        assert weeks[week]["top_type"] is None and weeks[week]["top_bucket"] is None, week
    assert drift(warehouse[0], P2)[W1]["type_js"] is None  # an instance with a single week


def test_identical_mix_is_0_and_disjoint_mix_is_1(warehouse):
    weeks = drift(warehouse[0], P1)
    assert weeks[W1]["type_js"] == pytest.approx(0, abs=1e-12)
    assert weeks[W1]["scan_js"] == pytest.approx(0, abs=1e-12)
    assert weeks[W2]["type_js"] == pytest.approx(1, abs=1e-12)
    assert weeks[W2]["scan_js"] == pytest.approx(1, abs=1e-12)  # 1024 MB is already "1 GB and up"
    assert (weeks[W2]["top_type"], weeks[W2]["type_change"]) == ("copy", pytest.approx(1.0))
    # '[0, 1 GB)' fell by 1 and '[1 GB, 10 GB)' rose by 1: the tie goes to the first label.
    assert (weeks[W2]["top_bucket"], weeks[W2]["bucket_change"]) == ("[0, 1 GB)", pytest.approx(-1.0))


def test_a_new_and_a_vanished_category_worked_by_hand(warehouse):
    week = drift(warehouse[0], P1)[W5]
    # Types: P = (select .5, copy .5) against Q = (select .75, insert .25); M = (.625, .25, .125).
    kl_p = 0.5 * math.log2(0.5 / 0.625) + 0.5 * math.log2(0.5 / 0.25)
    kl_q = 0.75 * math.log2(0.75 / 0.625) + 0.25 * math.log2(0.25 / 0.125)
    expected = math.sqrt((kl_p + kl_q) / 2)
    assert expected == pytest.approx(0.62702, abs=1e-5)
    assert expected == pytest.approx(js_distance({"select": 0.5, "copy": 0.5}, {"select": 0.75, "insert": 0.25}), abs=1e-12)
    assert week["type_js"] == pytest.approx(expected, abs=1e-9)
    assert (week["top_type"], week["type_change"]) == ("copy", pytest.approx(0.5))
    # Buckets: P = ('[0, 1 GB)' .5, 'unknown' .5) against Q = ('[0, 1 GB)' 1).
    expected_scan = math.sqrt((0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25) + math.log2(1 / 0.75)) / 2)
    assert week["scan_js"] == pytest.approx(expected_scan, abs=1e-9)
    assert (week["top_bucket"], week["bucket_change"]) == ("[0, 1 GB)", pytest.approx(-0.5))


def test_scan_buckets_are_the_generators():
    from pipeline_assets.source.generator import SCAN_EDGES_MB
    from pipeline_assets.warehouse.dbt_assets import project_var

    assert project_var("scan_size_edges_mb") == SCAN_EDGES_MB[1:-1].tolist()


def tail(warehouse, scope: str, deployment: str | None = None, instance_id: int | None = None) -> dict[str, tuple]:
    where = f"scope = '{scope}'"
    where += f" and deployment = '{deployment}'" if deployment else ""
    where += f" and instance_id = {instance_id}" if instance_id is not None else ""
    rows = query(warehouse, f"select entity, entities, top_entities, exec_hours * 3600000, top_exec_hours * 3600000, top_share from tail_concentration where {where}")
    return {row[0]: tuple(pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for v in row[1:]) for row in rows}


def test_tail_with_fewer_than_100_entities_takes_the_top_one(warehouse):
    got = tail(warehouse[0], "instance", *P1)
    # 14 queries (one without an execution time counts 0 ms): 600 of 1800 ms.
    assert got["query"] == (14, 1, 1800, 600, 1 / 3)
    # Users 1 (700 ms), 2 (400 ms), 3 (600 ms); query 14 has no user.
    assert got["user"] == (3, 1, 1700, 700, 700 / 1700)


def test_table_time_is_every_read_tables(warehouse):
    # Query 1 (600 ms) reads tables 10 and 11, query 2 (100 ms) reads 10; query 3 writes 10.
    assert tail(warehouse[0], "instance", *P1)["table"] == (2, 1, 1300, 700, 700 / 1300)


def test_tail_with_ties_at_the_cut(warehouse):
    # 150 queries -> top 2; three tie at 5000 ms: 10000 of 147 * 100 + 3 * 5000 = 29700 ms.
    assert tail(warehouse[0], "instance", *P2)["query"] == (150, 2, 29700, 10000, 10000 / 29700)


def test_deployment_and_fleet_rows(warehouse):
    wh = warehouse[0]
    assert tail(wh, "deployment", "provisioned")["query"] == (164, 2, 31500, 10000, 10000 / 31500)
    assert tail(wh, "deployment", "serverless")["query"] == (1, 1, 1_000_000, 1_000_000, 1.0)
    fleet = tail(wh, "fleet")
    assert fleet["query"] == (165, 2, 1_031_500, 1_005_000, 1_005_000 / 1_031_500)
    # Users are per instance: S1's user 1 is not P1's user 1.
    assert fleet["user"] == (5, 1, 1700 + 29700 + 1_000_000, 1_000_000, 1_000_000 / 1_031_400)
    assert query(wh, "select count(*) from tail_concentration where scope = 'fleet' and (deployment is not null or instance_id is not null)") == [(0,)]


# --- the dashboards ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serving(warehouse, tmp_path_factory: pytest.TempPathFactory):
    """Both marts exported as a serving folder (what serving_snapshot writes for them)."""
    import duckdb

    from pipeline_assets.serving.dashboard.data import ServingData

    folder = tmp_path_factory.mktemp("serving_drift")
    with duckdb.connect(str(warehouse[0]), read_only=True) as con:
        for name in ("weekly_workload_drift", "tail_concentration"):
            con.execute(f"copy {name} to '{folder / name}.parquet' (format parquet)")
    data = ServingData(folder)
    yield data
    data.close()


def test_changed_most_ranks_each_instances_largest_week(serving):
    from pipeline_assets.serving.dashboard.data import Filters
    from pipeline_assets.serving.dashboard.views import insights_drift

    top = insights_drift.changed_most(serving, Filters(), min_queries=2)
    # P1's largest change is W2 (1.0); W5 (0.63) is the same instance. P2 and S1 never compare.
    assert top["instance"].tolist() == ["provisioned:1"]
    assert top["week_start"].dt.date.tolist() == [W2]
    assert top["query_type_js_distance"].tolist() == [pytest.approx(1.0)]
    # A date filter ending before W2 leaves W1 (distance 0) as P1's largest.
    before = insights_drift.changed_most(serving, Filters(end=date(2024, 3, 10)), min_queries=2)
    assert before["query_type_js_distance"].tolist() == [pytest.approx(0.0, abs=1e-12)]
    # Weeks of fewer than MIN_QUERIES queries do not rank at all.
    assert insights_drift.changed_most(serving, Filters()).empty


def test_fleet_tail_follows_the_deployment_filter(serving):
    from pipeline_assets.serving.dashboard.data import Filters
    from pipeline_assets.serving.dashboard.views import insights_drift

    fleet = insights_drift.fleet_tail(serving, Filters())
    assert fleet["entity"].tolist() == ["query", "user", "table"]
    assert fleet["top_share"].iloc[0] == pytest.approx(1_005_000 / 1_031_500)
    provisioned = insights_drift.fleet_tail(serving, Filters(deployments=("provisioned",)))
    assert provisioned["top_share"].iloc[0] == pytest.approx(10_000 / 31_500)


def test_both_pages_draw_the_sections(serving, monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        import os
        from pathlib import Path

        from pipeline_assets.serving.dashboard.data import Filters, Instance, ServingData
        from pipeline_assets.serving.dashboard.views import insights_drift

        data = ServingData(Path(os.environ["DRIFT_SERVING"]))
        insights_drift.MIN_QUERIES = 2  # the hand-built weeks are small
        insights_drift.render_aggregate(data, Filters())
        insights_drift.render_expert(data, Filters(), Instance("provisioned", 1))

    monkeypatch.setenv("DRIFT_SERVING", str(serving.serving))
    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception, at.exception
    keys = {e.proto.id.rsplit("-", 1)[-1] for e in at.get("plotly_chart")}
    assert keys == {"drift_changed_most", "fleet_tail", "instance_drift", "instance_tail"}
    assert "Instances that changed most" in [s.value for s in at.subheader]


def test_the_candidate_floor_never_cuts_into_the_top_1_percent():
    """tail_concentration ranks only the entities at or above the 98th percentile (quantile_disc):
    for every size up to 1000, at least ceil(1%) of them, with distinct values or with ties."""
    import duckdb

    sql = """
        with sets as (
            select n, tied, unnest(range(n)) // (case when tied then 7 else 1 end) as x
            from range(1, 1000) as sizes(n), (values (false), (true)) as kinds(tied)
        ),
        floors as (select n, tied, quantile_disc(x, 0.98) as floor from sets group by all)
        select n, tied, count(*) filter (where x >= floor) as kept
        from sets join floors using (n, tied)
        group by all
        having kept < ceil(n / 100)
    """
    with duckdb.connect() as con:
        assert con.execute("select count(*) from (select unnest(range(n)) from range(1, 1000) as s(n))").fetchone() == (499500,)
        assert con.execute(sql).fetchall() == []
