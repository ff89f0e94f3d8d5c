"""Repetition and cache opportunity (query_repeats, daily_query_repetition, fleet_query_repetition,
cache_opportunity_leaderboard) on 12 hand-built queries, every value worked out by hand.

P1 = provisioned:1, P2 = provisioned:2; D1 = 2024-03-01, D2 = 2024-03-02. Key A = fingerprint
'A', 2 scans, 1 join, tables {10, 11}; key B = 'A', 3 scans, 1 join, table {12}.

P1, D1:  q1 10:00 select A (first)          q2 10:10 select B (same fingerprint, other scans: new)
         q3 10:20 select A, tables " 11,10,10" -> repeat of q1, 1200 s, cacheable, 2000 ms saved
         q4 10:25 insert writing table 11   q5 10:30 select A -> repeat, 600 s, NOT cacheable (q4)
         q6 10:35 cached row, NULL counts, source q5 -> key A, repeat, 300 s, cacheable (a hit)
         q12 11:02 update writing table 10
P1, D2:  q7 09:00 select A -> repeat of q6 across days, 80700 s, NOT cacheable (q12 in between)
         q8 09:30 select B -> repeat of q2, 84000 s, cacheable, 500 ms saved
         q9 09:40 select without fingerprint -> no key, never a repeat
P2, D1:  q10 11:00 select A (first on P2, though P1 ran it)  q11 11:05 select A -> repeat, 300 s,
         cacheable (P1's write at 11:02 is another instance's), 700 ms saved

The days are built out of order (D2, then D1): D2's row must come out as a full build makes it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import dagster as dg
import pytest
from dbt_support import dbt_paths, park, query, ts, write_raw_file

pytestmark = pytest.mark.slow(seconds=45)

P1, P2 = ("provisioned", 1), ("provisioned", 2)
D1, D2 = date(2024, 3, 1), date(2024, 3, 2)
HOUR_MS = 3_600_000
KEY_A = {"feature_fingerprint": "A", "num_scans": 2, "num_joins": 1, "read_table_ids": "10,11"}
KEY_B = {"feature_fingerprint": "A", "num_scans": 3, "num_joins": 1, "read_table_ids": "12"}
CACHED = {"feature_fingerprint": "c", "num_scans": None, "num_joins": None, "read_table_ids": None,
          "was_cached": True, "execution_duration_ms": 1}  # fmt: skip


def q(query_id: int, instance: tuple[str, int], at: str, query_type: str, **values: Any) -> dict[str, Any]:
    deployment, instance_id = instance
    row = {"deployment": deployment, "instance_id": instance_id, "query_id": query_id, "user_id": 1,
           "arrival_timestamp": ts(at), "query_type": query_type, "was_aborted": False, "was_cached": False,
           "execution_duration_ms": 100, "kafka_key": f"{deployment}:{instance_id}", "batch_id": "b1",
           "source_file": "manual.parquet", "source_row": query_id, "ingested_at": ts("2024-03-03 00:00:00")}  # fmt: skip
    row.update(values)
    return row


# fmt: off
ROWS = [
    q(1, P1, "2024-03-01 10:00:00", "select", **KEY_A, execution_duration_ms=1000),
    q(2, P1, "2024-03-01 10:10:00", "select", **KEY_B, execution_duration_ms=400),
    q(3, P1, "2024-03-01 10:20:00", "select", **dict(KEY_A, read_table_ids=" 11,10,10"), execution_duration_ms=2000),
    q(4, P1, "2024-03-01 10:25:00", "insert", feature_fingerprint="W", write_table_ids="11"),
    q(5, P1, "2024-03-01 10:30:00", "select", **KEY_A, execution_duration_ms=3000),
    q(6, P1, "2024-03-01 10:35:00", "other", **CACHED, cache_source_query_id=5),
    q(12, P1, "2024-03-01 11:02:00", "update", feature_fingerprint="U", write_table_ids="10"),
    q(7, P1, "2024-03-02 09:00:00", "select", **KEY_A, execution_duration_ms=4000),
    q(8, P1, "2024-03-02 09:30:00", "select", **KEY_B, execution_duration_ms=500),
    q(9, P1, "2024-03-02 09:40:00", "select", **dict(KEY_A, feature_fingerprint=None)),
    q(10, P2, "2024-03-01 11:00:00", "select", **KEY_A, execution_duration_ms=600),
    q(11, P2, "2024-03-01 11:05:00", "select", **KEY_A, execution_duration_ms=700),
]
# fmt: on

DAILY = ["stg_queries", "stg_query_deliveries", "clean_queries", "flattened_table_access", "query_repeats",
         "daily_query_repetition"]  # fmt: skip
ALL_TIME = ["fleet_query_repetition", "cache_opportunity_leaderboard"]


def materialize(assets: list[dg.AssetsDefinition], names: list[str], partition: str | None = None) -> None:
    from pipeline_assets.warehouse.dbt_assets import dbt_resource

    result = dg.materialize(
        assets, selection=[dg.AssetKey(n) for n in names], partition_key=partition, resources={"dbt": dbt_resource}
    )
    assert result.success
    failed = [e.asset_check_evaluation_data for e in result.get_asset_check_evaluations() if not e.passed]
    assert not failed, failed


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """D2's partition first, then D1's, then the all-time models; D2's daily row as it stood before D1."""
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

    with pytest.MonkeyPatch.context() as mp:
        paths = dbt_paths(mp, tmp_path_factory.mktemp("dbt_repetition"))
        write_raw_file(paths.raw_dir, ROWS, "landing-manual-12345678.parquet")
        materialize([dbt_daily_models], DAILY, "2024-03-02")
        before = query(paths.warehouse, "select repeats from daily_query_repetition")
        materialize([dbt_daily_models], DAILY, "2024-03-01")
        materialize([dbt_all_time_models], ALL_TIME)
        yield park(mp, paths).warehouse, before


def test_a_day_built_before_its_predecessor_sees_no_repeats_yet(built):
    _, before = built
    assert before == [(0,)]  # q7 and q8 repeat queries of D1, which was not built yet


def test_per_query_keys_repeats_and_cacheability(built):
    warehouse, _ = built
    rows = query(warehouse, """
        select query_id, is_repeat, seconds_since_previous, is_cacheable, repeat_key is null
        from query_repeats order by query_id""")  # fmt: skip
    assert rows == [
        (1, False, None, False, False),
        (2, False, None, False, False),    # same fingerprint as q1, other num_scans: not a repeat
        (3, True, 1200.0, True, False),    # read tables sorted and de-duplicated
        (4, False, None, False, False),
        (5, True, 600.0, False, False),    # q4 wrote table 11 in between
        (6, True, 300.0, True, False),     # cached: takes q5's key
        (7, True, 80700.0, False, False),  # previous is q6 (D1), q12 wrote table 10 in between
        (8, True, 84000.0, True, False),   # repeat of q2 across days
        (9, False, None, False, True),     # no fingerprint, no key
        (10, False, None, False, False),   # P1's queries are another instance's
        (11, True, 300.0, True, False),    # P1's write at 11:02 does not count on P2
        (12, False, None, False, False),
    ]


def test_daily_query_repetition(built):
    warehouse, _ = built
    rows = query(warehouse, """
        select deployment, instance_id, arrival_date, queries, repeats, repeat_share, cache_hits,
            cache_hit_rate, missed_cache_repeats, missed_cache_share, median_seconds_between_repeats,
            cacheable_repeats, saved_exec_hours
        from daily_query_repetition order by all""")  # fmt: skip
    assert rows == [
        ("provisioned", 1, D1, 7, 3, pytest.approx(3 / 7), 1, pytest.approx(1 / 7), 2, pytest.approx(2 / 3),
         600.0, 2, pytest.approx(2000 / HOUR_MS)),
        ("provisioned", 1, D2, 3, 2, pytest.approx(2 / 3), 0, 0.0, 2, 1.0, 82350.0, 1, pytest.approx(500 / HOUR_MS)),
        ("provisioned", 2, D1, 2, 1, 0.5, 0, 0.0, 1, 1.0, 300.0, 1, pytest.approx(700 / HOUR_MS)),
    ]  # fmt: skip


def test_fleet_query_repetition(built):
    warehouse, _ = built
    rows = query(warehouse, """
        select deployment, instances, queries, repeats, repeat_share, cache_hits, cache_hit_rate,
            missed_cache_share, median_seconds_between_repeats, cacheable_repeats, saved_exec_hours
        from fleet_query_repetition order by deployment""")  # fmt: skip
    # Gaps 300, 300, 600, 1200, 80700, 84000: the median is (600 + 1200) / 2.
    expected = (2, 12, 6, 0.5, 1, pytest.approx(1 / 12), pytest.approx(5 / 6), 900.0, 4, pytest.approx(3200 / HOUR_MS))
    assert rows == [("all", *expected), ("provisioned", *expected)]


def test_cache_opportunity_leaderboard(built):
    warehouse, _ = built
    rows = query(warehouse, """
        select rank, deployment, instance_id, queries, repeats, cacheable_repeats, saved_exec_hours
        from cache_opportunity_leaderboard order by rank""")  # fmt: skip
    assert rows == [
        (1, "provisioned", 1, 10, 5, 3, pytest.approx(2500 / HOUR_MS)),
        (2, "provisioned", 2, 2, 1, 1, pytest.approx(700 / HOUR_MS)),
    ]


def test_models_are_daily_or_all_time_assets_with_their_checks():
    from pipeline_assets.orchestration.definitions import defs
    from pipeline_assets.warehouse.partitions import daily_partitions

    graph = defs.resolve_asset_graph()
    for model in ("query_repeats", "daily_query_repetition"):
        assert graph.get(dg.AssetKey(model)).partitions_def == daily_partitions, model
    for model in ALL_TIME:
        assert graph.get(dg.AssetKey(model)).partitions_def is None, model
        assert graph.get(dg.AssetKey(model)).group_name == "marts"
    checks = {(key.asset_key.path[-1], key.name) for key in graph.asset_check_keys}
    shares = ("repeat_share", "cache_hit_rate", "missed_cache_share")
    for model in ("daily_query_repetition", "fleet_query_repetition", "cache_opportunity_leaderboard"):
        assert {(model, f"between_zero_and_one_{model}_{share}") for share in shares} <= checks, model
