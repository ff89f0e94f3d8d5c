"""The synthetic generator: deterministic, typed, and shaped like Redset (within tolerance)."""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pipeline_assets import schema
from pipeline_assets.source import generator

ROWS = 200_000

# The paper's figures (van Renen et al., VLDB 2024), written out here rather than imported,
# so a wrong constant in the generator fails the test.
PAPER_EXEC_SHARES = {  # (lower ms exclusive, upper ms inclusive): share of queries
    (None, 10): 0.137,
    (10, 100): 0.483,
    (100, 1_000): 0.249,
    (1_000, 10_000): 0.099,
    (10_000, 60_000): 0.022,
    (60_000, 600_000): 0.0086,
    (600_000, 3_600_000): 0.0008,
    (3_600_000, None): 0.00008,
}
PAPER_SCAN_SHARES = {  # (lower MB inclusive, upper MB exclusive): share of queries
    (None, 1_024): 0.75,
    (1_024, 10_240): 0.19,
    (10_240, 102_400): 0.041,
    (102_400, 1_048_576): 0.011,
    (1_048_576, None): 0.0024,
}


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generator.generate(ROWS, seed=11)


@pytest.fixture(scope="module")
def db(table: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("q", table)
    return con


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return rows(con, sql)[0]


def first_column(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    return [r[0] for r in rows(con, sql)]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digest(seed: int, name: str) -> str:
        path = generator.write(generator.generate(20_000, seed=seed), tmp_path / name)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert digest(3, "a.parquet") == digest(3, "b.parquet")
    assert digest(3, "a.parquet") != digest(4, "c.parquet")


def test_schema_order_and_keys(table, db):
    assert table.schema.equals(schema.ARROW_SCHEMA)
    assert table.num_rows == ROWS
    ts = table["arrival_timestamp"].to_numpy()
    assert (np.diff(ts.astype(np.int64)) >= 0).all()
    assert one(db, "SELECT count(*) FROM (SELECT DISTINCT deployment, instance_id, query_id FROM q)")[0] == ROWS
    n_instances = one(db, "SELECT count(*) FROM (SELECT DISTINCT deployment, instance_id FROM q)")[0]
    assert 8 <= n_instances <= 20
    for name in schema.REQUIRED:
        assert table[name].null_count == 0, name


def test_default_dates_follow_redset(db):
    lo, hi = one(db, "SELECT min(arrival_timestamp), max(arrival_timestamp) FROM q")
    assert lo.date() == date(2024, 3, 1)
    assert hi.date() == date(2024, 5, 30)  # 91 days from March 1st


# The paper's buckets describe provisioned rows (redset.md); serverless rows are heavier (below).
def test_execution_time_buckets_match_the_paper(db):
    for (lo, hi), share in PAPER_EXEC_SHARES.items():
        cond = " AND ".join(
            c for c in (lo and f"execution_duration_ms > {lo}", hi and f"execution_duration_ms <= {hi}") if c
        )
        got = one(db, f"SELECT avg(({cond})::int) FROM q WHERE deployment = 'provisioned'")[0]
        assert abs(got - share) <= 0.03, ((lo, hi), got, share)


def test_scan_size_buckets_match_the_paper(db):
    for (lo, hi), share in PAPER_SCAN_SHARES.items():
        cond = " AND ".join(c for c in (lo and f"mbytes_scanned >= {lo}", hi and f"mbytes_scanned < {hi}") if c)
        got = one(db, f"SELECT avg(({cond})::int) FROM q WHERE NOT was_cached AND deployment = 'provisioned'")[0]
        assert abs(got - share) <= 0.03, ((lo, hi), got, share)


def test_serverless_scans_and_runs_far_more(db):
    # redset.md: serverless queries scan about 9x the MB and run about 4x as long on average.
    scan, run = one(
        db,
        """SELECT avg(mbytes_scanned) FILTER (deployment = 'serverless')
                    / avg(mbytes_scanned) FILTER (deployment = 'provisioned'),
                  avg(execution_duration_ms) FILTER (deployment = 'serverless')
                    / avg(execution_duration_ms) FILTER (deployment = 'provisioned')
           FROM q""",
    )
    assert 7 <= scan <= 12, scan
    assert 3 <= run <= 5.5, run


def test_query_type_mix(db):
    mix = dict(rows(db, "SELECT query_type, count(*) / sum(count(*)) OVER () FROM q GROUP BY 1"))
    assert set(mix) <= set(schema.QUERY_TYPES)
    assert abs(mix["select"] - 0.49) <= 0.03
    assert abs(mix["ctas"] - 0.02) <= 0.01
    writes = sum(mix[t] for t in ("insert", "copy", "update", "delete", "ctas"))
    assert 0.2 <= writes <= 0.4  # writes are prominent
    cached = one(db, "SELECT avg(was_cached::int) FROM q")[0]
    assert 0.07 <= cached <= 0.14


def test_cached_rows_look_like_redset(db):
    bad = one(
        db,
        """SELECT count(*) FROM q WHERE was_cached AND NOT (
               query_type = 'other' AND execution_duration_ms = 1 AND cache_source_query_id IS NOT NULL
               AND compile_duration_ms IS NULL AND num_joins IS NULL AND num_scans IS NULL
               AND num_aggregations IS NULL AND num_permanent_tables_accessed IS NULL
               AND NOT was_aborted)""",
    )[0]
    assert bad == 0
    assert one(db, "SELECT count(*) FROM q WHERE NOT was_cached AND cache_source_query_id IS NOT NULL")[0] == 0
    # The source is an earlier select of the same instance with the same fingerprint.
    orphans = one(
        db,
        """SELECT count(*) FROM q c LEFT JOIN q s
             ON s.deployment = c.deployment AND s.instance_id = c.instance_id
            AND s.query_id = c.cache_source_query_id
           WHERE c.was_cached AND (s.query_id IS NULL OR s.query_type <> 'select'
                 OR s.arrival_timestamp > c.arrival_timestamp
                 OR s.feature_fingerprint <> c.feature_fingerprint)""",
    )[0]
    assert orphans == 0


def test_about_one_percent_aborted(db):
    assert 0.006 <= one(db, "SELECT avg(was_aborted::int) FROM q")[0] <= 0.014


def test_cluster_size_only_for_provisioned(db):
    filled = dict(rows(db, "SELECT deployment, count(cluster_size) / count(*) FROM q GROUP BY 1"))
    assert filled == {"provisioned": 1.0, "serverless": 0.0}


def test_serverless_only():
    t = generator.generate(5_000, seed=1, deployment="serverless")
    assert set(t["deployment"].to_pylist()) == {"serverless"}
    assert t["cluster_size"].null_count == t.num_rows


def test_recurring_queries_dominate(db):
    repeat = first_column(
        db,
        """SELECT 1 - count(DISTINCT feature_fingerprint) / count(*) FROM q
           GROUP BY deployment, instance_id""",
    )
    assert np.median(repeat) >= 0.7
    assert min(repeat) < 0.97  # not everything is a repeat: one-off queries exist


def test_ingest_runs_on_fixed_periods(db):
    # Per ingest template (instance + fingerprint), the gaps between runs are all about equal.
    cv = first_column(
        db,
        """WITH runs AS (
             SELECT deployment, instance_id, feature_fingerprint,
                    epoch(arrival_timestamp) - epoch(lag(arrival_timestamp) OVER (
                      PARTITION BY deployment, instance_id, feature_fingerprint
                      ORDER BY arrival_timestamp)) AS gap
             FROM q WHERE query_type IN ('copy', 'insert'))
           SELECT stddev(gap) / avg(gap) FROM runs WHERE gap IS NOT NULL
           GROUP BY deployment, instance_id, feature_fingerprint HAVING count(*) >= 10""",
    )
    assert len(cv) >= 20
    assert np.mean(np.array(cv) < 0.05) >= 0.95


def test_selects_read_tables_that_ingest_writes(db):
    db.execute(
        """CREATE OR REPLACE TEMP VIEW reads AS
           SELECT deployment, instance_id, unnest(string_split(read_table_ids, ','))::BIGINT AS table_id
           FROM q WHERE query_type = 'select' AND read_table_ids <> ''"""
    )
    db.execute(
        """CREATE OR REPLACE TEMP VIEW ingested AS
           SELECT DISTINCT deployment, instance_id, write_table_ids::BIGINT AS table_id
           FROM q WHERE query_type IN ('copy', 'insert')"""
    )
    share = one(
        db,
        """SELECT avg((i.table_id IS NOT NULL)::int) FROM reads r LEFT JOIN ingested i
           USING (deployment, instance_id, table_id)""",
    )[0]
    assert share >= 0.5
    # Table ids are a small, consistent set per instance, not fresh ids per query.
    per_instance = rows(db, "SELECT count(DISTINCT table_id) FROM reads GROUP BY deployment, instance_id")
    assert max(n for (n,) in per_instance) < 1_000


def test_no_tables_is_null_or_empty(db):
    kinds = set(
        first_column(
            db,
            """SELECT CASE WHEN write_table_ids IS NULL THEN 'null' ELSE 'empty' END FROM q
               WHERE query_type = 'select' AND NOT was_cached""",
        )
    )
    assert kinds == {"null", "empty"}  # both spellings of "none" occur, as in Redset copies
    bad = one(db, "SELECT count(*) FROM q WHERE regexp_matches(read_table_ids, '[^0-9,]|,,|^,|,$')")[0]
    assert bad == 0


def test_flat_and_daily_instances_side_by_side(db):
    # Machine-driven instances are flat over the hours of the day; scheduled and human ones are
    # not (the busiest hour sees at least twice the queries of the quietest).
    ratios = first_column(
        db,
        """WITH h AS (SELECT deployment, instance_id, hour(arrival_timestamp) AS hr, count(*) AS n
                     FROM q WHERE query_type NOT IN ('copy', 'insert') GROUP BY ALL)
           SELECT max(n) / min(n) FROM h GROUP BY deployment, instance_id""",
    )
    assert min(ratios) < 1.3 and max(ratios) >= 2, ratios


def test_start_and_days_are_honoured():
    t = generator.generate(3_000, seed=9, start=date(2024, 4, 10), days=3)
    lo, hi = t["arrival_timestamp"][0].as_py(), t["arrival_timestamp"][-1].as_py()
    assert lo.date() >= date(2024, 4, 10) and hi.date() <= date(2024, 4, 12)


def test_spills_are_rare_and_concentrated(db):
    share = one(db, "SELECT avg((mbytes_spilled > 0)::int) FROM q")[0]
    assert 0 < share < 0.05
    spilling = one(db, "SELECT count(DISTINCT (deployment, instance_id)) FROM q WHERE mbytes_spilled > 0")[0]
    total = one(db, "SELECT count(DISTINCT (deployment, instance_id)) FROM q")[0]
    assert spilling < total


def test_small_and_empty_runs():
    assert generator.generate(0, seed=1).schema.equals(schema.ARROW_SCHEMA)
    tiny = generator.generate(7, seed=1)
    assert tiny.num_rows == 7 and tiny.schema.equals(schema.ARROW_SCHEMA)


def test_summary_names_rows_instances_and_mix(table):
    text = generator.summary(table, "x.parquet")
    assert f"{ROWS:,} rows" in text
    assert "provisioned" in text and "serverless" in text
    assert "select" in text and "2024-03-01" in text
    assert "provisioned weeks, medians over instances: weekend/weekday 1." in text
