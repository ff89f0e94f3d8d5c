"""The serving snapshot switches whole (serving/publishes.py, remote_publish.py on S3): a reader during
repeated publishes sees one publish per query, never a mix of two, and old publishes are pruned to the
bound. A small hand-made warehouse, the real publish() and the dashboards' reader; each test on disk
and again with the zone on the session's S3 server ([s3])."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest
from serving_pipeline import listed, serving_at

from pipeline_assets.serving import publishes
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.snapshot import publish, read_manifest

TABLES = ("leaderboard", "table_workload")  # two served marts; each row says which build made it
ROWS = 20000
PUBLISHES = 12


def build(warehouse: Path, stamp: int) -> None:
    """What a dbt build would do: every served table rewritten, all rows carrying `stamp`."""
    with duckdb.connect(str(warehouse)) as con:
        for table in TABLES:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {stamp} AS stamp, range AS r FROM range({ROWS})")


def stamps(publish_: publishes.Publish) -> dict[str, tuple[int, set[int]]]:
    """Per table of one publish: its rows and the stamps they carry, read through the zone's file system."""
    out = {}
    for table in TABLES:
        _, arrow = publish_.read_table(f"{table}.parquet")
        out[table] = (arrow.num_rows, set(arrow.column("stamp").to_pylist()))
    return out


def test_a_reader_during_repeated_publishes_never_sees_two_publishes_mixed(tmp_path, monkeypatch, zone_storage):
    monkeypatch.setenv("REDSET_SERVING_PUBLISHES_KEPT", "3")
    warehouse, serving = tmp_path / "warehouse.duckdb", serving_at(tmp_path, zone_storage)
    build(warehouse, 0)
    publish(warehouse, serving)
    zone = publishes.zone(serving)
    done, seen, failed = threading.Event(), [], []

    def read() -> None:
        data = ServingData(zone)
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
    assert ServingData(zone).query("SELECT max(stamp) AS s FROM leaderboard").s[0] == PUBLISHES

    current = publishes.current_id(zone)
    assert read_manifest(zone)["publish_id"] == current
    kept = listed(zone, publishes.PUBLISHES)
    assert len(kept) == 3 and kept[-1] == current  # pruned to the bound, the current one the newest


class Killed(Exception):
    """The publisher dying between its uploads and the pointer's switch."""


def test_a_publisher_killed_before_the_switch_leaves_readers_on_the_last_publish_whole(
    tmp_path, monkeypatch, zone_storage
):
    """A reader that resolved the pointer reads that publish whole while the next one is written,
    after a publisher died with every file up but the pointer not switched, and after the switch,
    until the publish is pruned."""
    monkeypatch.setenv("REDSET_SERVING_PUBLISHES_KEPT", "3")
    warehouse, serving = tmp_path / "warehouse.duckdb", serving_at(tmp_path, zone_storage)
    build(warehouse, 1)
    first = publish(warehouse, serving)
    zone = publishes.zone(serving)
    held = zone.current()  # a reader resolved the pointer
    whole = {table: (ROWS, {1}) for table in TABLES}

    write_json = publishes.Zone.write_json

    def die_at_the_pointer(self, value, name):
        if name == publishes.POINTER:
            raise Killed(name)
        write_json(self, value, name)

    build(warehouse, 2)
    monkeypatch.setattr(publishes.Zone, "write_json", die_at_the_pointer)
    with pytest.raises(Killed):
        publish(warehouse, serving)
    monkeypatch.setattr(publishes.Zone, "write_json", write_json)
    orphan = [i for i in listed(zone, publishes.PUBLISHES) if i != first.publish_id]
    assert len(orphan) == 1 and stamps(publishes.Publish(zone, orphan[0])) == {t: (ROWS, {2}) for t in TABLES}
    assert zone.current_id() == first.publish_id and stamps(zone.current()) == whole  # every file up, none read

    second = publish(warehouse, serving)
    assert stamps(zone.current()) == {table: (ROWS, {2}) for table in TABLES}
    assert stamps(held) == whole, "the held publish changed or went before it was pruned"

    later = [publish(warehouse, serving).publish_id for _ in range(2)]
    # Kept: the current one and the two before it; the first and the dead publisher's are gone.
    assert listed(zone, publishes.PUBLISHES) == [second.publish_id, *later]
    with pytest.raises(FileNotFoundError):
        stamps(held)


def test_a_table_not_built_this_time_keeps_its_last_publish(tmp_path, zone_storage):
    warehouse, serving = tmp_path / "warehouse.duckdb", serving_at(tmp_path, zone_storage)
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
