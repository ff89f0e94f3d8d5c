"""Postgres as a serving target, against the real server of the `postgres_server` fixture.

publish() writes the Parquet snapshot, then loads the same tables into a Postgres schema in one
transaction (serving/postgres.py). A reader thread counts the rows of two tables over and over
while several publishes of different sizes go in: every pair it sees belongs to one publication.
A failed load names the table and the URL without its password, leaves Postgres on the previous
set, and the Parquet snapshot is published anyway.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import pytest
from postgres_support import PostgresServer

from pipeline_assets.serving import postgres, publishes, snapshot

SIZES = (3_000, 9_000, 1_000, 12_000, 6_000)  # query_metrics rows per publish; leaderboard has twice as many


def make_warehouse(path: Path, rows: int, extra_column: bool = False) -> None:
    """query_metrics with `rows` rows (over 3 deployments, so kpis has 3 rows per day) and a
    leaderboard with 2 * rows, replaced on every call."""
    extra = ", 'x' AS note" if extra_column else ""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE OR REPLACE TABLE query_metrics AS SELECT 'dep' || (i % 3) AS deployment, "
            "DATE '2024-03-01' + CAST(i % 2 AS INTEGER) AS arrival_date, i AS queries, i AS successful, "
            "0 AS aborted, 0 AS cached, i / 7.0 AS mbytes_scanned, 0.0 AS mbytes_spilled, 0 AS joins, "
            "0 AS aggregations, 1 AS scans, TIMESTAMPTZ '2024-03-01 10:00:00+00' + to_seconds(i) AS built_at "
            f"FROM range({rows}) AS t(i)"
        )
        con.execute(
            "CREATE OR REPLACE TABLE leaderboard AS SELECT 'board' AS board, 'all' AS period, i AS rank, "
            f"'entity ' || i AS entity, i * 1.5 AS value{extra} FROM range({2 * rows}) AS t(i)"
        )


@pytest.fixture
def target(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh database's URL, set as REDSET_SERVING_POSTGRES_URL (schema `served`)."""
    url = postgres_server.create_database(f"serving_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("REDSET_SERVING_POSTGRES_URL", url)
    monkeypatch.setenv("REDSET_SERVING_POSTGRES_SCHEMA", "served")
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))
    return url


def counts(con: psycopg.Connection) -> tuple[int, int, dict]:
    """(query_metrics rows, leaderboard rows, _published's row counts), two statements in one
    REPEATABLE READ transaction."""
    with con.transaction():
        qm = con.execute("SELECT count(*) FROM served.query_metrics").fetchone()[0]
        lb = con.execute("SELECT count(*) FROM served.leaderboard").fetchone()[0]
        published = con.execute("SELECT tables FROM served._published").fetchone()[0]
    return qm, lb, published


def test_each_publish_loads_postgres_and_a_reader_never_sees_a_mix(target: str, tmp_path: Path) -> None:
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    make_warehouse(warehouse, SIZES[0])
    first = snapshot.publish(warehouse, serving)
    assert first.postgres_load and first.postgres_load.error is None
    assert first.postgres_load.rows == {"query_metrics": SIZES[0], "leaderboard": 2 * SIZES[0], "kpis": 6}

    seen: list[tuple[int, int, dict]] = []
    stop, failures = threading.Event(), []

    def reader() -> None:
        try:
            with psycopg.connect(target) as con:
                con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                while not stop.is_set():
                    seen.append(counts(con))
        except Exception as exc:  # noqa: BLE001  (reported by the test thread)
            failures.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for rows in SIZES[1:]:
            make_warehouse(warehouse, rows)
            pub = snapshot.publish(warehouse, serving)
            assert pub.postgres_load.error is None, pub.postgres_load.error
            assert pub.postgres_load.rows["query_metrics"] == pub.rows["query_metrics"] == rows
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    assert {(qm, lb) for qm, lb, _ in seen} <= {(n, 2 * n) for n in SIZES}, "a reader saw tables of two publishes"
    assert all(p["query_metrics"] == qm and p["leaderboard"] == lb for qm, lb, p in seen)
    assert len({qm for qm, _, _ in seen}) >= 2, "the reader saw no publish happen"

    # The last publish, value for value, as the dashboards' Parquet file has it.
    with psycopg.connect(target) as con:
        assert counts(con)[:2] == (SIZES[-1], 2 * SIZES[-1])
        cur = con.execute("SELECT * FROM served.query_metrics ORDER BY queries")
        loaded = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'served' "
            "AND table_name = 'query_metrics'").fetchall())  # fmt: skip
    parquet = pd.read_parquet(publishes.current_dir(serving) / "query_metrics.parquet").sort_values("queries", ignore_index=True)
    assert loaded.shape == parquet.shape
    assert loaded["mbytes_scanned"].astype(float).tolist() == pytest.approx(parquet["mbytes_scanned"].tolist())
    assert loaded["built_at"].iloc[-1] == datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc) + pd.Timedelta(seconds=SIZES[-1] - 1)
    assert loaded["arrival_date"].iloc[1] == date(2024, 3, 2)
    assert types["built_at"] == "timestamp with time zone" and types["queries"] == "bigint"


def test_a_failed_load_names_the_table_hides_the_password_and_keeps_both_sides(
    target: str, postgres_server: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    make_warehouse(warehouse, 100)
    assert snapshot.publish(warehouse, serving).postgres_load.error is None
    with psycopg.connect(target, autocommit=True) as con:  # someone's view pins leaderboard's columns
        con.execute("CREATE VIEW served.top AS SELECT entity FROM served.leaderboard")

    make_warehouse(warehouse, 200, extra_column=True)  # a new shape: leaderboard must be re-created
    with caplog.at_level(logging.WARNING, logger=postgres.__name__):
        pub = snapshot.publish(warehouse, serving)
    error = pub.postgres_load.error
    assert error.startswith("Postgres serving load failed at table leaderboard into postgresql://redset@127.0.0.1:")
    assert "schema served" in error and "depend" in error
    assert postgres_server.password not in error and postgres_server.password not in caplog.text
    assert [r.getMessage() for r in caplog.records] == [error]
    # The Parquet snapshot is published; Postgres still holds the previous set, query_metrics too.
    assert snapshot.read_manifest(serving)["tables"]["query_metrics"]["rows"] == 200
    assert snapshot.read_manifest(serving)["postgres"]["error"] == error
    with psycopg.connect(target) as con:
        assert counts(con)[:2] == (100, 200)

    wrong = target.replace(postgres_server.password, "hunter2-wrong")
    monkeypatch.setenv("REDSET_SERVING_POSTGRES_URL", wrong)
    error = snapshot.publish(warehouse, serving).postgres_load.error
    assert error.startswith("Postgres serving load failed at table (connecting) into postgresql://redset@")
    assert "password authentication failed" in error and "hunter2" not in error

    monkeypatch.setenv("REDSET_SERVING_POSTGRES_URL", "postgresql://ann:hunter2@[broken")
    assert snapshot.publish(warehouse, serving).postgres_load.error.endswith("is not a valid libpq URL")


def test_redact_keeps_everything_but_the_password() -> None:
    assert postgres.redact("postgresql://ann:pw%21x@db.example:5433/marts?sslmode=require") == (
        "postgresql://ann@db.example:5433/marts"
    )
    assert postgres.redact("host=db port=5432 dbname=marts user=ann password=pw!x") == "postgresql://ann@db:5432/marts"
    assert postgres.redact("postgresql://db/marts?password=pw!x") == "postgresql://db/marts"
    assert "pw" not in postgres.redact("postgresql://ann:pw@[broken")
