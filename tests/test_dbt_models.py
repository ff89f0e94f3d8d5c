"""The dbt models on a hand-built raw zone of 43 rows, every expected value worked out by hand.

Three instances: P1 = provisioned:1, P2 = provisioned:2, S1 = serverless:1 (same instance_id as
P1, another deployment). Two days, D1 = 2024-03-01 and D2 = 2024-03-02, plus one row before the
span (2024-02-20). The run is what Dagster does for the partition range 2024-02-29...2024-03-02
(one dbt build with min_date/max_date; the first partition of the span also takes the earlier
rows), followed by the all-time models.

What is in the data:
- a duplicate delivery: query 107 written twice with the same Kafka offset (a re-delivery);
- a landing file ingested twice (rows 405 and 406, same source_file and source_row);
- dead letters for offsets 101 and 102, 102 written twice (a re-delivery);
- a duplicate query_id: query 108 sent again later as a new message, with exec 999;
- every quarantine reason, and rows breaking two rules (the first one counts); implausible values
  (1e30 MB scanned, 1e30 MB spilled, a compile beyond 30 days) in the hour whose metrics are
  checked, on the instance that leads the boards, so a leak would change them;
- ties: P2 and S1 both have 2 queries on D2; users 8 and 9 both have 4 queries on P1;
  queries 301 and 303 both compiled 400 ms; S1 has six users, so the top 5 cuts one;
- a query reading two (and three) tables, padded and repeated ids, empty and blank lists;
- a select between two ingests (104 reads table 10 between the ingests at 10:10 and 10:50),
  and a select whose next ingest is the next day (109 -> 111);
- stress windows at exactly 14 and 15 minutes, and a 24 h window reaching into the day before.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt_support import (
    DbtPaths,
    dbt_paths,
    materialize_dbt,
    park,
    query,
    reasons_in_pandas,
    table,
    ts,
    write_dead_letters,
    write_raw_file,
)

pytestmark = pytest.mark.slow(seconds=70)

P1, P2, S1 = ("provisioned", 1), ("provisioned", 2), ("serverless", 1)
D1, D2 = date(2024, 3, 1), date(2024, 3, 2)
TOPIC = "redset.queries"

DEFAULTS: dict[str, Any] = {
    "user_id": 7,
    "database_id": 1,
    "feature_fingerprint": "fp",
    "compile_duration_ms": 0,
    "queue_duration_ms": 0,
    "execution_duration_ms": 100,
    "was_aborted": False,
    "was_cached": False,
    "cache_source_query_id": None,
    "num_permanent_tables_accessed": 1,
    "num_external_tables_accessed": 0,
    "num_system_tables_accessed": 0,
    "read_table_ids": None,
    "write_table_ids": None,
    "mbytes_scanned": 10.0,
    "mbytes_spilled": 0.0,
    "num_joins": 0,
    "num_scans": 1,
    "num_aggregations": 0,
}


def q(query_id: int | None, instance: tuple[str, int], at: str, query_type: str, **values: Any) -> dict[str, Any]:
    deployment, instance_id = instance
    row = dict(DEFAULTS, deployment=deployment, instance_id=instance_id, query_id=query_id)
    row.update(
        arrival_timestamp=ts(at),
        query_type=query_type,
        cluster_size=4.0 if deployment == "provisioned" else None,
    )
    row.update(values)
    return row


# fmt: off
CLEAN_ROWS = [
    # P1, D1, hour 10: the metrics hour.
    q(101, P1, "2024-03-01 10:00:00", "select", compile_duration_ms=50, read_table_ids="10,11",
      mbytes_scanned=100.0, num_joins=2, num_scans=3, num_aggregations=1),
    q(102, P1, "2024-03-01 10:05:00", "select", queue_duration_ms=10, execution_duration_ms=200,
      read_table_ids=" 10 , 13 ", mbytes_scanned=50.0, mbytes_spilled=5.0),
    q(103, P1, "2024-03-01 10:10:00", "insert", user_id=8, compile_duration_ms=100, queue_duration_ms=20,
      execution_duration_ms=400, write_table_ids="10", mbytes_scanned=20.0),
    q(104, P1, "2024-03-01 10:30:00", "select", user_id=8, compile_duration_ms=150, queue_duration_ms=30,
      execution_duration_ms=800, read_table_ids="10,13", was_aborted=True, mbytes_scanned=30.0,
      mbytes_spilled=10.0, num_joins=1, num_aggregations=2),
    q(105, P1, "2024-03-01 10:40:00", "other", compile_duration_ms=None, execution_duration_ms=1,
      was_cached=True, cache_source_query_id=101, mbytes_scanned=0.0, num_joins=None, num_scans=None,
      num_aggregations=None),
    q(106, P1, "2024-03-01 10:50:00", "copy", user_id=9, compile_duration_ms=200, queue_duration_ms=40,
      execution_duration_ms=1600, write_table_ids="10,12", mbytes_scanned=400.0),
    q(107, P1, "2024-03-01 11:00:00", "update", write_table_ids="11"),
    q(108, P1, "2024-03-01 11:30:00", "delete", user_id=9, write_table_ids="11,13"),
    q(109, P1, "2024-03-01 12:00:00", "select", read_table_ids="11,12,13"),
    q(110, P1, "2024-03-01 13:00:00", "select", user_id=8, compile_duration_ms=300, read_table_ids="10,13,13"),
    # P1, D2
    q(111, P1, "2024-03-02 01:00:00", "copy", user_id=9, write_table_ids="12"),
    q(112, P1, "2024-03-02 02:00:00", "select", read_table_ids="12"),
    q(113, P1, "2024-03-02 03:00:00", "select", user_id=8, read_table_ids=""),
    q(114, P1, "2024-03-02 04:00:00", "select", user_id=9, write_table_ids="  "),
    # P2: the stress-index instance.
    q(301, P2, "2024-03-01 09:00:00", "select", user_id=5, compile_duration_ms=400),
    q(302, P2, "2024-03-01 09:10:00", "select", user_id=5, execution_duration_ms=300, was_aborted=True),
    q(303, P2, "2024-03-01 09:20:00", "select", user_id=6, compile_duration_ms=400, execution_duration_ms=500,
      mbytes_spilled=7.0),
    q(304, P2, "2024-03-01 09:34:00", "select", user_id=6, execution_duration_ms=700),
    q(305, P2, "2024-03-01 09:35:00", "select", user_id=6, execution_duration_ms=900),
    q(306, P2, "2024-03-02 08:00:00", "select", user_id=5, execution_duration_ms=1100),
    q(307, P2, "2024-03-02 09:30:00", "select", user_id=6),
    # S1: six users (405 and 406 come from a landing file, below).
    q(401, S1, "2024-03-01 15:00:00", "select"),
    q(402, S1, "2024-03-01 15:00:30", "select"),
    q(407, S1, "2024-03-01 15:01:00", "select", user_id=5),
    q(408, S1, "2024-03-01 15:02:00", "insert", write_table_ids="50"),
    q(409, S1, "2024-03-01 15:03:00", "select", read_table_ids="50"),
    q(403, S1, "2024-03-02 10:00:00", "select", user_id=1),
    q(404, S1, "2024-03-02 10:00:00", "select", user_id=2),
]
LANDING_ROWS = [
    q(405, S1, "2024-03-01 15:01:00", "select", user_id=3),
    q(406, S1, "2024-03-01 15:01:00", "select", user_id=4),
]
QUARANTINED_ROWS = {  # arrival -> (row, reason)
    "2024-03-01 12:30:00": (q(None, P1, "2024-03-01 12:30:00", "select"), "null_key"),
    "2024-03-01 12:40:00": (q(901, P1, "2024-03-01 12:40:00", "select", queue_duration_ms=-5), "negative_duration"),
    "2024-02-20 10:00:00": (q(902, P1, "2024-02-20 10:00:00", "select"), "arrival_out_of_span"),
    "2024-03-01 12:50:00": (q(903, P1, "2024-03-01 12:50:00", "merge"), "unknown_query_type"),
    "2024-03-01 12:55:00": (q(904, P1, "2024-03-01 12:55:00", "other", was_cached=True), "cached_without_source"),
    # Breaks two rules; the first in the documented order wins.
    "2024-03-01 12:58:00": (q(905, P1, "2024-03-01 12:58:00", "bogus", execution_duration_ms=-1), "negative_duration"),
    "2024-03-01 10:45:00": (q(906, P1, "2024-03-01 10:45:00", "select", mbytes_scanned=1e30), "implausible_value: mbytes_scanned"),
    "2024-03-01 10:46:00": (q(907, P1, "2024-03-01 10:46:00", "select", mbytes_spilled=1e30), "implausible_value: mbytes_spilled"),
    # Two columns out of bounds: the first in the order of var plausible_bounds wins.
    "2024-03-01 10:47:00": (q(908, P1, "2024-03-01 10:47:00", "select", compile_duration_ms=2_592_000_001, num_joins=-1),
                            "implausible_value: compile_duration_ms"),
}
# fmt: on

BATCH_1_INGESTED = "2024-03-03 00:00:00"


def kafka(rows: list[dict[str, Any]], first_offset: int, batch: str, ingested: str) -> list[dict[str, Any]]:
    """Rows as the raw dump writes them: Kafka provenance, consecutive offsets in partition 0."""
    return [
        dict(
            row,
            kafka_topic=TOPIC,
            kafka_partition=0,
            kafka_offset=first_offset + i,
            kafka_timestamp=ts(ingested),
            kafka_key=f"{row['deployment']}:{row['instance_id']}",
            batch_id=batch,
            ingested_at=ts(ingested),
        )
        for i, row in enumerate(rows)
    ]


def landing(rows: list[dict[str, Any]], batch: str, ingested: str) -> list[dict[str, Any]]:
    return [
        dict(row, source_file="manual.parquet", source_row=i, kafka_key=f"{row['deployment']}:{row['instance_id']}",
             batch_id=batch, ingested_at=ts(ingested))
        for i, row in enumerate(rows)
    ]


def write_dataset(paths: DbtPaths) -> int:
    """Write the raw zone; returns the number of raw rows."""
    batch_1 = kafka(CLEAN_ROWS + [row for row, _ in QUARANTINED_ROWS.values()], 0, "b1", BATCH_1_INGESTED)
    query_107 = next(r for r in batch_1 if r["query_id"] == 107)
    query_108 = next(r for r in batch_1 if r["query_id"] == 108)
    # 108 sent again later: a new message (offset 100) with other values. The first one wins.
    resent_108 = kafka([dict(query_108, execution_duration_ms=999)], 100, "b2", "2024-03-03 01:00:00")
    # 107's message written a second time by a later run (same offset): a re-delivery.
    redelivered_107 = [dict(query_107, batch_id="b3", ingested_at=ts("2024-03-03 02:00:00"))]
    files = {
        f"{TOPIC}-p0-o0-{len(batch_1) - 1}.parquet": batch_1,
        f"{TOPIC}-p0-o100-100.parquet": resent_108,
        f"{TOPIC}-p0-o{query_107['kafka_offset']}-{query_107['kafka_offset']}.parquet": redelivered_107,
        "landing-manual-abcdef12.parquet": landing(LANDING_ROWS, "landing-1", "2024-03-03 00:30:00"),
        "landing-manual-abcdef12-1.parquet": landing(LANDING_ROWS, "landing-2", "2024-03-03 03:00:00"),
    }
    for name, rows in files.items():
        write_raw_file(paths.raw_dir, rows, name)
    write_dead_letters(paths.dead_dir, TOPIC, [101, 102], f"{TOPIC}-p0-o101-102.parquet")
    write_dead_letters(paths.dead_dir, TOPIC, [102], f"{TOPIC}-p0-o102-102.parquet")
    return sum(len(rows) for rows in files.values())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The hand-built raw zone, built through the Dagster dbt assets; (paths, run result, raw rows)."""
    from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models
    from pipeline_assets.warehouse.offset_outcomes import offsets_have_one_outcome

    with pytest.MonkeyPatch.context() as mp:
        paths = dbt_paths(mp, tmp_path_factory.mktemp("dbt_hand"))
        # A small threshold, so the abort-rate board has something to rank (the default is 100).
        mp.setenv("REDSET_ABORT_RATE_MIN_QUERIES", "4")
        raw_rows = write_dataset(paths)
        result = materialize_dbt(
            [dbt_daily_models, dbt_all_time_models],
            partition_range=("2024-02-29", "2024-03-02"),
            checks=[offsets_have_one_outcome],
        )
        yield park(mp, paths), result, raw_rows


def rows_of(paths: DbtPaths, sql: str) -> list[tuple]:
    return query(paths.warehouse, sql)


def test_dbt_stages_every_row_of_the_raw_zone(built):
    # The raw zone read back with pyarrow, not through dbt: every row a delivery, and one
    # delivery per message (a re-delivered message shares its Kafka position or landing row).
    paths, _, raw_rows = built
    parts = []
    for path in sorted(paths.raw_dir.glob("arrival_date=*/*.parquet")):
        part = pq.read_table(path)
        parts.append(part.append_column("arrival_date", pa.array([path.parent.name] * part.num_rows)))
    raw = pa.concat_tables(parts)
    positions = ["arrival_date", "kafka_topic", "kafka_partition", "kafka_offset", "source_file", "source_row"]
    messages = raw.group_by(positions, use_threads=False).aggregate([]).num_rows
    assert raw.num_rows == raw_rows == 43
    assert messages == 40  # less the re-delivered message 107 and the twice-ingested landing rows 405, 406
    [(deliveries,)] = rows_of(paths, "select count(*) from stg_query_deliveries")
    [(staged,)] = rows_of(paths, "select count(*) from stg_queries")
    assert (deliveries, staged) == (raw.num_rows, messages)


def test_quarantine_reasons_match_the_rules_computed_in_pandas(built):
    # The rules applied again to what dbt staged, without rules.sql (staged_rows_tie_out only
    # checks that every staged row is accounted for, with the same macros the models use).
    paths, _, _ = built
    identity = ["deployment", "instance_id", "query_id", "arrival_timestamp", "kafka_offset", "source_row"]
    with duckdb.connect(str(paths.warehouse), read_only=True) as connection:
        staged = connection.execute("select * from stg_queries").df()
        quarantined = connection.execute(f"select {', '.join(identity)}, reason from quarantine_queries").df()
    reasons = reasons_in_pandas(staged)
    expected = staged[reasons.notna()][identity].assign(reason=reasons.dropna())
    as_rows = lambda frame: sorted(map(str, frame.astype(object).where(frame.notna(), None).itertuples(index=False)))  # noqa: E731
    assert as_rows(quarantined) == as_rows(expected)
    assert len(expected) == len(QUARANTINED_ROWS)


def test_run_materialises_the_partitions_and_passes_every_check(built):
    _, result, _ = built
    assert result.success
    partitions = {e.partition for e in result.get_asset_materialization_events() if e.asset_key.path == ["clean_queries"]}
    assert partitions == {"2024-02-29", "2024-03-01", "2024-03-02"}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["staged_rows_tie_out"] is True
    assert checks["unique_key_clean_queries_deployment__instance_id__query_id"] is True
    assert all(checks.values()), [name for name, passed in checks.items() if not passed]


def test_row_counts_and_column_schemas_reach_dagster(built):
    paths, result, _ = built
    events = {e.asset_key.path[-1]: e for e in result.get_asset_materialization_events()}
    leaderboard = events["leaderboard"].materialization.metadata
    assert leaderboard["dagster/row_count"].value == rows_of(paths, "select count(*) from leaderboard")[0][0]
    columns = [c.name for c in leaderboard["dagster/column_schema"].value.columns]
    assert columns[:5] == ["board", "period", "rank", "entity", "value"]


def test_staging_collapses_duplicate_deliveries(built):
    paths, _, raw_rows = built
    assert rows_of(paths, "select count(*) from stg_queries") == [(raw_rows - 3,)]  # 107 once, 405/406 once
    assert rows_of(paths, "select batch_id, kafka_offset from stg_queries where query_id = 107") == [("b1", 6)]
    assert rows_of(
        paths, "select query_id, source_row, batch_id from stg_queries where source_file is not null order by 1"
    ) == [(405, 0, "landing-1"), (406, 1, "landing-1")]


def test_tie_out_staged_equals_clean_plus_quarantined_plus_duplicates(built):
    paths, _, _ = built
    staged = rows_of(paths, "select count(*) from stg_queries")[0][0]
    clean = rows_of(paths, "select count(*) from clean_queries")[0][0]
    quarantined = rows_of(paths, "select count(*) from quarantine_queries")[0][0]
    assert (staged, clean, quarantined) == (40, 30, 9)
    assert staged == clean + quarantined + 1  # the one duplicate query_id (108)
    assert rows_of(paths, "select arrival_date, count(*) from clean_queries group by 1 order by 1") == [(D1, 22), (D2, 8)]


def test_every_quarantine_reason(built):
    paths, _, _ = built
    got = {str(at): reason for at, reason in rows_of(paths, "select arrival_timestamp, reason from quarantine_queries")}
    assert got == {at: reason for at, (_, reason) in QUARANTINED_ROWS.items()}
    # The row from before the span sits in its own arrival date, taken by the first partition.
    assert rows_of(paths, "select arrival_date from quarantine_queries where query_id = 902") == [(date(2024, 2, 20),)]


def test_clean_keeps_the_earliest_delivery_of_a_duplicate_query(built):
    paths, _, _ = built
    assert rows_of(
        paths, "select execution_duration_ms, kafka_offset from clean_queries where instance_id = 1 and query_id = 108"
    ) == [(100, 7)]
    landing = rows_of(paths, "select query_id, kafka_topic, source_file from clean_queries where query_id in (405, 406)")
    assert sorted(landing) == [(405, None, "manual.parquet"), (406, None, "manual.parquet")]


def test_query_metrics_for_one_hour(built):
    paths, _, _ = built
    [row] = table(paths.warehouse, "query_metrics where deployment = 'provisioned' and instance_id = 1 and hour = '2024-03-01 10:00'")
    # 101..106: exec 100, 200, 400, 800, 1, 1600 -> sorted 1, 100, 200, 400, 800, 1600.
    # quantile_cont: p50 at 2.5 -> 300; p95 at 4.75 -> 800 + .75 * 800; p99 at 4.95 -> 800 + .95 * 800.
    # queue 0, 10, 20, 30, 0, 40: mean 100/6; p95 at 4.75 of 0, 0, 10, 20, 30, 40 -> 37.5.
    expected = {
        "arrival_date": D1, "queries": 6, "successful": 5, "aborted": 1, "cached": 1,
        "exec_p50_ms": pytest.approx(300), "exec_p95_ms": pytest.approx(1400), "exec_p99_ms": pytest.approx(1560),
        "queue_avg_ms": pytest.approx(100 / 6), "queue_p95_ms": pytest.approx(37.5),
        "mbytes_scanned": 600.0, "mbytes_spilled": 15.0, "spill_rate": pytest.approx(2 / 6),
        "joins": 3, "aggregations": 3, "scans": 7,
        "n_select": 3, "n_insert": 1, "n_copy": 1, "n_update": 0, "n_delete": 0, "n_ctas": 0,
        "n_unload": 0, "n_vacuum": 0, "n_analyze": 0, "n_other": 1,
    }  # fmt: skip
    assert {k: row[k] for k in expected} == expected
    # Hour 11 holds 107 (once) and 108 with its first execution time, 100 (not the re-sent 999).
    assert rows_of(
        paths,
        "select queries, exec_p99_ms, n_update, n_delete from query_metrics "
        "where instance_id = 1 and deployment = 'provisioned' and hour = '2024-03-01 11:00'",
    ) == [(2, 100.0, 1, 1)]
    assert rows_of(paths, "select count(*) from query_metrics") == [(13,)]


def test_compile_metrics(built):
    paths, _, _ = built
    where = "deployment = 'provisioned' and instance_id = 1 and arrival_date = '2024-03-01'"
    [select] = table(paths.warehouse, f"compile_metrics where {where} and query_type = 'select'")
    # Selects 101, 102, 104, 109, 110: compile 50, 0, 150, 0, 300; queue 0, 10, 30, 0, 0;
    # exec 100, 200, 800, 100, 100. p95 of 0, 0, 50, 150, 300 at 3.8 -> 150 + .8 * 150.
    assert select == {
        "deployment": "provisioned", "instance_id": 1, "arrival_date": D1, "query_type": "select",
        "queries": 5, "compiled_queries": 3, "compile_ms_sum": 500, "compile_ms_avg": 100.0,
        "compile_ms_p95": pytest.approx(270), "compile_share": pytest.approx(500 / (500 + 40 + 1300)),
        "joins_sum": 3, "scans_sum": 7, "aggregations_sum": 3,
        "joins_avg": pytest.approx(0.6), "scans_avg": pytest.approx(1.4), "aggregations_avg": pytest.approx(0.6),
    }  # fmt: skip
    [cached] = table(paths.warehouse, f"compile_metrics where {where} and query_type = 'other'")
    assert (cached["queries"], cached["compiled_queries"], cached["compile_ms_sum"], cached["compile_ms_avg"]) == (1, 0, 0, None)
    assert (cached["compile_share"], cached["joins_sum"], cached["joins_avg"]) == (0.0, 0, None)


def board(paths: DbtPaths, name: str, period: str) -> list[tuple]:
    return rows_of(
        paths,
        f"select rank, entity, value from leaderboard where board = '{name}' and period = '{period}' "
        "order by deployment, instance_id, rank",
    )


def test_leaderboard_instance_boards(built):
    paths, _, _ = built
    by_rank = lambda rows: sorted(rows)  # noqa: E731
    assert by_rank(board(paths, "instances_by_queries", "all")) == [
        (1, "provisioned:1", 14.0), (2, "serverless:1", 9.0), (3, "provisioned:2", 7.0)]  # fmt: skip
    assert by_rank(board(paths, "instances_by_queries", "2024-03-01")) == [
        (1, "provisioned:1", 10.0), (2, "serverless:1", 7.0), (3, "provisioned:2", 5.0)]  # fmt: skip
    # The tie: 2 queries each; provisioned:2 comes before serverless:1 by entity id.
    assert by_rank(board(paths, "instances_by_queries", "2024-03-02")) == [
        (1, "provisioned:1", 4.0), (2, "provisioned:2", 2.0), (3, "serverless:1", 2.0)]  # fmt: skip
    assert by_rank(board(paths, "instances_by_execution_hours", "all")) == [
        (1, "provisioned:1", pytest.approx(3901 / 3.6e6)),
        (2, "provisioned:2", pytest.approx(3700 / 3.6e6)),
        (3, "serverless:1", pytest.approx(900 / 3.6e6))]  # fmt: skip
    assert by_rank(board(paths, "instances_by_spilled_mb", "all")) == [
        (1, "provisioned:1", 15.0), (2, "provisioned:2", 7.0), (3, "serverless:1", 0.0)]  # fmt: skip
    # At least 4 queries (REDSET_ABORT_RATE_MIN_QUERIES): on D2 only P1 qualifies.
    assert by_rank(board(paths, "instances_by_abort_rate", "all")) == [
        (1, "provisioned:2", pytest.approx(1 / 7)), (2, "provisioned:1", pytest.approx(1 / 14)),
        (3, "serverless:1", 0.0)]  # fmt: skip
    assert by_rank(board(paths, "instances_by_abort_rate", "2024-03-01")) == [
        (1, "provisioned:2", 0.2), (2, "provisioned:1", 0.1), (3, "serverless:1", 0.0)]  # fmt: skip
    assert by_rank(board(paths, "instances_by_abort_rate", "2024-03-02")) == [(1, "provisioned:1", 0.0)]


def test_leaderboard_top_users_per_instance(built):
    paths, _, _ = built
    assert board(paths, "top_users_by_queries", "all") == [
        # P1: user 7 has 6; users 8 and 9 tie at 4, ordered by user id.
        (1, "user 7 on provisioned:1", 6.0), (2, "user 8 on provisioned:1", 4.0), (3, "user 9 on provisioned:1", 4.0),
        (1, "user 6 on provisioned:2", 4.0), (2, "user 5 on provisioned:2", 3.0),
        # S1 has six users; user 5 (1 query, highest id) falls out of the top 5.
        (1, "user 7 on serverless:1", 4.0), (2, "user 1 on serverless:1", 1.0), (3, "user 2 on serverless:1", 1.0),
        (4, "user 3 on serverless:1", 1.0), (5, "user 4 on serverless:1", 1.0),
    ]  # fmt: skip
    user_ids = rows_of(paths, "select distinct user_id, query_id is null from leaderboard where board = 'top_users_by_queries' and instance_id = 2")
    assert sorted(user_ids) == [(5, True), (6, True)]


def test_leaderboard_longest_compiles_names_query_and_instance(built):
    paths, _, _ = built
    rows = rows_of(
        paths,
        "select rank, query_id, deployment, instance_id, value from leaderboard "
        "where board = 'longest_compiles' and period = 'all' order by rank",
    )
    assert rows == [
        (1, 301, "provisioned", 2, 400.0), (2, 303, "provisioned", 2, 400.0),  # tie, by query id
        (3, 110, "provisioned", 1, 300.0), (4, 106, "provisioned", 1, 200.0), (5, 104, "provisioned", 1, 150.0),
        (6, 103, "provisioned", 1, 100.0), (7, 101, "provisioned", 1, 50.0),
    ]  # fmt: skip
    assert rows_of(paths, "select entity from leaderboard where board = 'longest_compiles' and rank = 1 and period = 'all'") == [
        ("query 301 on provisioned:2",)
    ]
    # D2 has no query that compiled.
    assert board(paths, "longest_compiles", "2024-03-02") == []
    assert board(paths, "longest_compiles", "2024-03-01") == board(paths, "longest_compiles", "all")


def test_flattened_table_access(built):
    paths, _, _ = built
    got = rows_of(paths, "select deployment, instance_id, query_id, table_id, access from flattened_table_access")
    expected = [
        (101, 10, "read"), (101, 11, "read"), (102, 10, "read"), (102, 13, "read"), (103, 10, "write"),
        (104, 10, "read"), (104, 13, "read"), (106, 10, "write"), (106, 12, "write"), (107, 11, "write"),
        (108, 11, "write"), (108, 13, "write"), (109, 11, "read"), (109, 12, "read"), (109, 13, "read"),
        (110, 10, "read"), (110, 13, "read"), (111, 12, "write"), (112, 12, "read"),
    ]  # fmt: skip
    assert sorted(got) == sorted([("provisioned", 1, *e) for e in expected] + [
        ("serverless", 1, 408, 50, "write"), ("serverless", 1, 409, 50, "read")])  # fmt: skip
    assert rows_of(paths, "select arrival_timestamp, query_type from flattened_table_access where query_id = 106 limit 1") == [
        (ts("2024-03-01 10:50:00"), "copy")
    ]


def test_table_ingest_gaps(built):
    paths, _, _ = built
    got = rows_of(
        paths,
        "select deployment, instance_id, table_id, query_id, seconds_since_last_ingest, seconds_until_next_ingest "
        "from table_ingest_gaps",
    )
    expected = [
        (10, 101, None, 600.0),     # ingests into 10 at 10:10 and 10:50
        (11, 101, None, None),      # 11 is only updated/deleted, never ingested
        (10, 102, None, 300.0),
        (13, 102, None, None),
        (10, 104, 1200.0, 1200.0),  # 10:30, between the ingests at 10:10 and 10:50
        (13, 104, None, None),
        (11, 109, None, None),
        (12, 109, 4200.0, 46800.0), # 12:00 on D1: 10:50 before, 01:00 on D2 after
        (13, 109, None, None),
        (10, 110, 7800.0, None),
        (13, 110, None, None),
        (12, 112, 3600.0, None),
    ]  # fmt: skip
    assert sorted(got, key=str) == sorted(
        [("provisioned", 1, *e) for e in expected] + [("serverless", 1, 50, 409, 60.0, None)], key=str
    )


def test_ingest_gaps_built_day_by_day_equal_the_range_build(built, tmp_path, monkeypatch):
    """A partition run also updates earlier dates' rows: D2's ingest at 01:00 into table 12 becomes
    the next ingest of 109 (12:00 on D1), which the D1 run had left without one."""
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models

    paths, _, _ = built
    day_by_day = dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv("REDSET_RAW_DIR", str(paths.raw_dir))
    next_of_109 = "select next_ingest from daily_table_ingest_gaps where query_id = 109 and table_id = 12"
    assert materialize_dbt([dbt_daily_models], partition_range=("2024-02-29", "2024-03-01")).success
    assert query(day_by_day.warehouse, next_of_109) == [(None,)]
    assert materialize_dbt([dbt_daily_models], partition="2024-03-02").success
    assert query(day_by_day.warehouse, next_of_109) == [(ts("2024-03-02 01:00:00"),)]
    assert table(day_by_day.warehouse, "daily_table_ingest_gaps") == table(paths.warehouse, "daily_table_ingest_gaps")


def test_table_workload(built):
    paths, _, _ = built
    got = rows_of(paths, "select * from table_workload order by deployment, instance_id, table_id")
    assert got == [
        # table 10: selects 101, 102, 104, 110; ingests 103, 106. Since: -, -, 1200, 7800. Until: 600, 300, 1200, -.
        ("provisioned", 1, 10, 4, 0, 2, 1.0, True, 4500.0, 4500.0, 700.0, 600.0),
        ("provisioned", 1, 11, 2, 2, 0, 0.5, False, None, None, None, None),
        ("provisioned", 1, 12, 2, 0, 2, 1.0, True, 3900.0, 3900.0, 46800.0, 46800.0),
        # 4 selects, 1 delete: exactly 80% is not "more than 80%".
        ("provisioned", 1, 13, 4, 1, 0, 0.8, False, None, None, None, None),
        ("serverless", 1, 50, 1, 0, 1, 1.0, True, 60.0, 60.0, None, None),
    ]  # fmt: skip


def test_stress_index(built):
    paths, _, _ = built
    got = rows_of(
        paths,
        "select minute, queries, avg_exec_15m_ms, avg_exec_24h_ms, stress_index, spilled_mb_15m "
        "from stress_index where deployment = 'provisioned' and instance_id = 2 order by minute",
    )
    assert got == [
        (ts("2024-03-01 09:00"), 1, 100.0, 100.0, 1.0, 0.0),
        (ts("2024-03-01 09:10"), 1, 200.0, 200.0, 1.0, 0.0),
        (ts("2024-03-01 09:20"), 1, 400.0, 300.0, pytest.approx(4 / 3), 7.0),  # 09:00 is 20 min back: out
        (ts("2024-03-01 09:34"), 1, 600.0, 400.0, 1.5, 7.0),  # 09:20 is 14 min back: in
        (ts("2024-03-01 09:35"), 1, 800.0, 500.0, 1.6, 0.0),  # 09:20 is 15 min back: out
        (ts("2024-03-02 08:00"), 1, 1100.0, 600.0, pytest.approx(11 / 6), 0.0),  # 24 h reach back into D1
        (ts("2024-03-02 09:30"), 1, 100.0, 700.0, pytest.approx(1 / 7), 0.0),  # 09:34 and 09:35 of D1 still in
    ]
    assert rows_of(paths, "select queries, avg_exec_15m_ms from stress_index where deployment = 'serverless' and minute = '2024-03-01 15:00'") == [
        (2, 100.0)
    ]
    assert rows_of(paths, "select count(*) from stress_index") == [(26,)]


def test_every_model_and_column_is_described(built):
    """The YAML describes every model and every column each model really has."""
    from pipeline_assets.warehouse.dbt_assets import dbt_project

    paths, _, _ = built
    manifest = json.loads(dbt_project.manifest_path.read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert len(models) == 14 + 2 + 1 + 4 + 2  # + drift, tail, anomalies, the repetition models (4), daily_table_usage and hourly_workload_mix
    for name, node in models.items():
        assert node["description"].strip(), f"model {name} has no description"
        actual = [c for (c,) in rows_of(paths, f"select column_name from information_schema.columns where table_name = '{name}' order by ordinal_position")]
        documented = list(node["columns"])
        assert sorted(actual) == sorted(documented), f"{name}: columns {actual} but YAML documents {documented}"
        undescribed = [c for c, props in node["columns"].items() if not props["description"].strip()]
        assert not undescribed, f"{name}: columns without a description: {undescribed}"


def test_implausible_values_reach_neither_the_kpis_nor_the_leaderboard(built, tmp_path):
    """1e30 MB scanned or spilled is quarantined: the KPI cards (from the serving snapshot) and the
    leaderboard hold the clean rows' sums only."""
    from pipeline_assets.serving import publishes
    from pipeline_assets.serving.snapshot import KPIS, publish

    paths, _, _ = built
    publish(paths.warehouse, tmp_path)
    kpis = query(paths.warehouse, f"select sum(queries), sum(mbytes_scanned), sum(mbytes_spilled) from '{publishes.current_dir(tmp_path) / KPIS}.parquet'")
    clean = CLEAN_ROWS + LANDING_ROWS  # each query once (108's re-send is not kept)
    assert kpis == [(30, sum(r["mbytes_scanned"] for r in clean), sum(r["mbytes_spilled"] for r in clean))]
    assert kpis[0][1:] == (840.0, 22.0)  # 600 in hour 10 of P1 + 24 rows of 10 MB; spilled 5 + 10 + 7
    assert rows_of(paths, "select max(value) from leaderboard") == [(400.0,)]  # the longest compile, 400 ms


# --- every Kafka offset has one outcome (pipeline_assets/warehouse/offset_outcomes.py) ------------------------

# Offsets 0..36: the 28 clean rows (107's offset 6 written twice, counted once) and the 9
# quarantined ones; offset 100: 108 sent again (a duplicate delivery); 101 and 102: dead letters.
OUTCOME_COUNTS = {"clean": 28, "quarantined": 9, "duplicate_delivery": 1, "dead_letter": 2, "dead_letter_replayed": 0}


def test_offset_check_passes_with_one_outcome_per_offset(built):
    _, result, _ = built
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "offsets_have_one_outcome"]
    assert evaluation.passed
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert {k: metadata[k] for k in OUTCOME_COUNTS} == OUTCOME_COUNTS
    assert (metadata["no_outcome"], metadata["more_than_one_outcome"], metadata["not_yet_built"]) == (0, 0, 0)
    assert (metadata["landing_rows"], metadata["redelivered_copies"]) == (2, 1)


def copied(paths: DbtPaths, root) -> DbtPaths:
    """A copy of the built raw zone, dead letters and warehouse, to break without harming `built`."""
    import shutil

    copy = DbtPaths(raw_dir=root / "raw", warehouse=root / "warehouse.duckdb", dead_dir=root / "dead_letters")
    shutil.copytree(paths.raw_dir, copy.raw_dir)
    shutil.copytree(paths.dead_dir, copy.dead_dir)
    shutil.copyfile(paths.warehouse, copy.warehouse)
    return copy


def outcomes_of(paths: DbtPaths):
    from pipeline_assets.warehouse.offset_outcomes import offset_outcomes

    return offset_outcomes(paths.raw_dir, paths.dead_dir, paths.warehouse)


def test_offset_check_fails_on_an_offset_with_no_outcome(built, tmp_path):
    import duckdb

    paths = copied(built[0], tmp_path)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("delete from clean_queries where kafka_offset = 3")  # staged, then lost
        con.execute("delete from stg_queries where kafka_offset = 4")  # never staged from a file dbt read
        con.execute("delete from clean_queries where kafka_offset = 4")
    found = outcomes_of(paths)
    assert not found.passed
    assert found.failures == {"none": (2, [f"{TOPIC}:0:3", f"{TOPIC}:0:4"])}
    assert found.counts == dict(OUTCOME_COUNTS, clean=26)
    assert f"2 offset(s) with no outcome (e.g. {TOPIC}:0:3, {TOPIC}:0:4)" in found.describe()


def test_offset_check_fails_on_an_offset_with_two_outcomes(built, tmp_path):
    import duckdb

    paths = copied(built[0], tmp_path)
    write_dead_letters(paths.dead_dir, TOPIC, [5], f"{TOPIC}-p0-o5-5.parquet")  # also a clean row
    with duckdb.connect(str(paths.warehouse)) as con:  # a clean row kept twice
        con.execute("insert into clean_queries select * from clean_queries where kafka_offset = 8")
    found = outcomes_of(paths)
    assert found.failures == {"clean + dead_letter": (1, [f"{TOPIC}:0:5"]), "clean (2 in all)": (1, [f"{TOPIC}:0:8"])}
    assert found.counts == dict(OUTCOME_COUNTS, clean=26)
    assert "1 offset(s) with clean + dead_letter (e.g. redset.queries:0:5)" in found.describe()


def test_offsets_dbt_has_not_read_yet_are_counted_apart(built, tmp_path):
    """A raw file written after its date was built: new offsets wait for the next build, and the
    offsets it repeats keep their outcome."""
    paths = copied(built[0], tmp_path)
    later = kafka([q(120, P1, "2024-03-02 05:00:00", "select"), q(121, P1, "2024-03-02 06:00:00", "select")], 200, "b4", "2024-03-04 00:00:00")
    again = next(r for r in kafka(CLEAN_ROWS, 0, "b5", "2024-03-04 00:00:00") if r["query_id"] == 111)
    write_raw_file(paths.raw_dir, [*later, again], f"{TOPIC}-p0-o200-201.parquet")
    found = outcomes_of(paths)
    assert found.passed, found.describe()
    assert (found.not_yet_built, found.counts, found.redelivered_copies) == (2, OUTCOME_COUNTS, 2)


def test_owed_before_commit_offsets_unbuilt_past_the_limit_fail_the_check(built, tmp_path, monkeypatch):
    """A raw file nobody built for longer than REDSET_NOT_BUILT_LIMIT_SECONDS: a debt nobody pays."""
    import os
    import time

    paths = copied(built[0], tmp_path)
    later = kafka([q(122, P1, "2024-03-02 05:00:00", "select"), q(123, P1, "2024-03-02 06:00:00", "select")], 300, "b6", "2024-03-04 00:00:00")
    [path] = write_raw_file(paths.raw_dir, later, f"{TOPIC}-p0-o300-301.parquet")
    monkeypatch.setenv("REDSET_NOT_BUILT_LIMIT_SECONDS", "3600")
    assert outcomes_of(paths).not_yet_built == 2  # written just now: waiting for its build
    written = time.time() - 3601
    os.utime(path, (written, written))
    found = outcomes_of(paths)
    assert found.failures == {"not_yet_built for over 3600s": (2, [f"{TOPIC}:0:300", f"{TOPIC}:0:301"])}
    assert (found.not_yet_built, found.counts) == (0, OUTCOME_COUNTS)
    assert "2 offset(s) with not_yet_built for over 3600s" in found.describe()
