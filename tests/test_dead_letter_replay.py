"""`redset dead-letters replay` against a real broker, the real raw dump and dbt: a replayed letter
lands once however often it is sent, its original is marked dead_letter_replayed by the offsets
check, and a replay that fails again is one more attempt of the same letter."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer
from dbt_support import dbt_paths, kafka_rows, materialize_dbt, query, raw_table

from pipeline_assets.cli.main import main as redset
from pipeline_assets.kafka import messages
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw import zone, zone_read
from pipeline_assets.raw.dead_letter_browser import letters
from pipeline_assets.source import generator

pytestmark = pytest.mark.kafka

DAY = "2024-03-01"
GOOD = 20
# What the offsets check reads: the rest of the daily marts would only slow the test.
OUTCOME_MODELS = ["stg_query_deliveries", "stg_queries", "clean_queries", "quarantine_queries"]


def rows_and_values(n: int) -> tuple[list[dict], list[tuple[str, bytes]]]:
    table = generator.generate(n, seed=5, deployment="both", start=date.fromisoformat(DAY), days=1)
    keys, values = messages.encode(table)
    return table.to_pylist(), [(k, v.encode()) for k, v in zip(keys.to_pylist(), values.to_pylist(), strict=True)]


def send(bootstrap: str, topic: str, messages_: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in messages_:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def dump() -> None:
    from pipeline_assets.raw.dump.asset import raw_queries

    with dg.instance_for_test() as instance:
        assert dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=instance).success


def build_and_check():
    """The daily models for DAY, then the offsets check's verdict."""
    from pipeline_assets import settings
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models
    from pipeline_assets.warehouse.offset_outcomes import offset_outcomes

    with dg.instance_for_test() as instance:
        assert materialize_dbt([dbt_daily_models], partition_range=(DAY, DAY), instance=instance, selection=OUTCOME_MODELS).success
    return offset_outcomes(settings.raw_dir(), settings.dead_letter_dir(), settings.warehouse_path())


@pytest.fixture
def pipeline(kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    paths = dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv("REDSET_TOPIC", kafka_topic)
    monkeypatch.setenv("REDSET_CONSUMER_GROUP", f"test-replay-{uuid.uuid4().hex[:8]}")
    return paths


def test_replay_of_a_fixed_kind_lands_once_when_run_twice(kafka_broker: str, kafka_topic: str, pipeline, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # fmt: skip
    rows, values = rows_and_values(GOOD + 2)
    big_key, big = values[GOOD]  # fine, but over the size limit of the first dump: a rule then relaxed
    padded = big[:-1] + b',"padding":"' + b"x" * 1000 + b'"}'
    bad_key, good_bytes = values[GOOD + 1]
    send(kafka_broker, kafka_topic, values[:GOOD] + [(big_key, padded), (bad_key, good_bytes[:-1])])  # the last: bad_json
    monkeypatch.setenv("REDSET_MAX_MESSAGE_BYTES", "1000")
    dump()
    by_kind = {r["kind"]: r for r in letters(pipeline.dead_dir).to_pylist()}
    assert sorted(by_kind) == ["bad_json", "oversized"]
    oversized, bad = (f"{r['kafka_topic']}:{r['kafka_partition']}:{r['kafka_offset']}" for r in by_kind.values())

    # The rule is relaxed: the oversized kind replayed as it was kept, twice (as an operator might).
    monkeypatch.delenv("REDSET_MAX_MESSAGE_BYTES")
    for _ in range(2):
        assert redset(["dead-letters", "replay", "--kind", "oversized"]) == 0
    # The bad one fixed by hand, twice; the second time differently (another query_id).
    fixed, refixed = tmp_path / "fixed.json", tmp_path / "refixed.json"
    fixed.write_bytes(good_bytes)
    refixed.write_bytes(json.dumps(dict(json.loads(good_bytes), query_id=999_999_999)).encode())
    for path in (fixed, refixed):
        assert redset(["dead-letters", "replay", "--offset", bad, "--from-file", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[:2] for line in out if "->" in line] == [[oversized, "oversized"]] * 2 + [[bad, "bad_json"]] * 2
    assert out.count(f"replayed 1 of 1 dead letter(s) to {kafka_topic}") == 4

    dump()
    replays = zone_read.read_raw_zone(pipeline.raw_dir, ["replay_of"]).column("replay_of").to_pylist()
    assert sorted(r for r in replays if r) == sorted([oversized] * 2 + [bad] * 2)  # the header, kept
    outcomes = build_and_check()

    assert outcomes.passed, outcomes.describe()
    assert outcomes.counts == {"clean": GOOD + 2, "quarantined": 0, "duplicate_delivery": 2, "dead_letter": 0,
                               "dead_letter_replayed": 2}  # fmt: skip
    went = [line.rsplit("-> ", 1)[1] for line in out if "->" in line]
    assert len(set(went)) == 4  # each replay a new offset
    assert outcomes.replayed == {oversized: went[0], bad: went[2]}  # the first replay of each is the one kept
    # Each replayed query counted once; the second fix of `bad` (another query_id) is the duplicate.
    ids = [r["query_id"] for r in rows]
    clean = dict(query(pipeline.warehouse, "select query_id, count(*) from clean_queries group by 1"))
    assert clean == dict.fromkeys(ids, 1)
    staged = query(pipeline.warehouse, "select replay_of, count(*) from stg_queries where replay_of is not null group by 1 order by 1")
    deliveries = query(pipeline.warehouse, "select count(*) from stg_query_deliveries where replay_of is not null")
    assert (staged, deliveries) == (sorted([(bad, 1), (oversized, 1)]), [(4,)])


def test_a_replay_that_fails_again_is_one_letter_with_two_attempts(kafka_broker: str, kafka_topic: str, pipeline,
                                                                   tmp_path: Path, capsys) -> None:  # fmt: skip
    # A raw zone written before replays: its file has no replay_of column, and dbt still reads it.
    rows, _ = rows_and_values(3)
    old = raw_table(kafka_rows(rows, 0, "old", datetime(2024, 3, 2))).drop_columns(["replay_of"])
    zone.write_table_atomically(old, zone.date_dir(pipeline.raw_dir, date.fromisoformat(DAY)) / "redset.queries-p0-o0-2.parquet")
    send(kafka_broker, kafka_topic, [("provisioned:1", b'{"query_id": <b>1</b>')])
    dump()
    [first] = letters(pipeline.dead_dir).to_pylist()
    position = f"{first['kafka_topic']}:{first['kafka_partition']}:{first['kafka_offset']}"

    still_bad = tmp_path / "still_bad.json"
    still_bad.write_bytes(b'{"query_id": 1')
    assert redset(["dead-letters", "replay", "--offset", position, "--from-file", str(still_bad)]) == 0
    [line, _] = capsys.readouterr().out.splitlines()
    again = line.rsplit("-> ", 1)[1]
    dump()

    [letter] = letters(pipeline.dead_dir).to_pylist()
    assert (letter["attempts"], letter["kind"], letter["bytes"]) == ([position, again], "bad_json", len(still_bad.read_bytes()))
    assert f"{first['kafka_topic']}:{first['kafka_partition']}:{first['kafka_offset']}" == position
    assert redset(["dead-letters", "list"]) == 0
    assert "2 attempts" in capsys.readouterr().out
    # Asked by its later attempt, it is the same letter; a third try says which attempt it is.
    assert redset(["dead-letters", "show", again]) == 0
    assert f"attempts: {[position, again]}" in capsys.readouterr().out

    outcomes = build_and_check()
    assert outcomes.passed, outcomes.describe()
    assert outcomes.counts == {"clean": 3, "quarantined": 0, "duplicate_delivery": 0, "dead_letter": 1,
                               "dead_letter_replayed": 1}  # fmt: skip
    assert outcomes.replayed == {position: again}
    assert query(pipeline.warehouse, "select count(*), count(replay_of) from stg_queries") == [(3, 0)]

    # Clear errors, naming what was asked for.
    assert redset(["dead-letters", "replay", "--kind", "too_deep"]) == 1
    assert "no dead letter of kind 'too_deep'" in capsys.readouterr().err
    assert redset(["dead-letters", "replay", "--offset", f"{kafka_topic}:2:99"]) == 1
    assert f"no dead letter at {kafka_topic}:2:99" in capsys.readouterr().err
