"""The serving snapshot switches whole (serving/publishes.py): a reader during repeated publishes sees one
publish per query, never a mix of two, and old publishes are pruned to the bound. A small hand-made
warehouse, the real publish() and the dashboards' reader."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from pipeline_assets.serving import publishes
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.snapshot import publish, read_manifest

TABLES = ("leaderboard", "table_workload")  # two served marts; each row says which build made it
PUBLISHES = 12


def build(warehouse: Path, stamp: int) -> None:
    """What a dbt build would do: every served table rewritten, all rows carrying `stamp`."""
    with duckdb.connect(str(warehouse)) as con:
        for table in TABLES:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {stamp} AS stamp, range AS r FROM range(20000)")


def test_a_reader_during_repeated_publishes_never_sees_two_publishes_mixed(tmp_path, monkeypatch):
    monkeypatch.setenv("REDSET_SERVING_PUBLISHES_KEPT", "3")
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    build(warehouse, 0)
    publish(warehouse, serving)
    done, seen, failed = threading.Event(), [], []

    def read() -> None:
        data = ServingData(serving)
        sql = "SELECT (SELECT min(stamp) FROM leaderboard) AS a, (SELECT max(stamp) FROM leaderboard) AS a2, " \
              "(SELECT min(stamp) FROM table_workload) AS b, (SELECT max(stamp) FROM table_workload) AS b2"  # fmt: skip
        try:
            while not done.is_set():
                row = data.query(sql, needs=TABLES).iloc[0]
                seen.append(tuple(int(v) for v in row))
        except Exception as exc:  # the test's own assertion below reports it
            failed.append(repr(exc))
        finally:
            data.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for stamp in range(1, PUBLISHES + 1):
            build(warehouse, stamp)
            publish(warehouse, serving)
    finally:
        done.set()
        reader.join(timeout=60)
    assert failed == []
    assert seen and all(len(set(row)) == 1 for row in seen), [row for row in seen if len(set(row)) > 1][:5]
    assert len({row[0] for row in seen}) > 1  # the reader did read across publishes
    assert ServingData(serving).query("SELECT max(stamp) AS s FROM leaderboard").s[0] == PUBLISHES

    current = publishes.current_id(serving)
    assert read_manifest(serving)["publish_id"] == current
    kept = sorted(p.name for p in (serving / publishes.PUBLISHES).iterdir())
    assert len(kept) == 3 and kept[-1] == current  # pruned to the bound, the current one the newest


def test_a_table_not_built_this_time_keeps_its_last_publish(tmp_path):
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    build(warehouse, 1)
    publish(warehouse, serving)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE table_workload")
        con.execute("UPDATE leaderboard SET stamp = 2")
    pub = publish(warehouse, serving)
    assert "table_workload" in pub.missing
    data = ServingData(serving)
    assert set(TABLES) <= data.tables()
    row = data.query("SELECT (SELECT max(stamp) FROM leaderboard) AS a, (SELECT max(stamp) FROM table_workload) AS b",
                     needs=TABLES).iloc[0]  # fmt: skip
    assert (int(row.a), int(row.b)) == (2, 1)
