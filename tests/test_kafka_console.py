"""The Kafka console against a real broker and a real raw dump: topics, watermarks, recent
throughput, a group's lag, and the dead-letter browser, on the CLI and on the dashboards' page.
Bytes that would render as HTML or Markdown are shown escaped; nothing here commits offsets."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer
from raw_support import group_offsets, use_private_dirs
from streamlit.testing.v1 import AppTest

from pipeline_assets import schema, settings
from pipeline_assets.cli.main import main as redset
from pipeline_assets.kafka import console, messages
from pipeline_assets.kafka.config import client_config
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dead_letter_browser import Position, escaped, letters, raw_bytes
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.source import generator

pytestmark = pytest.mark.kafka

APP = Path(__file__).resolve().parents[1] / "pipeline_assets" / "serving" / "dashboard" / "app.py"
ROWS = 300
# Each lands in the dead-letter zone; each would do harm if a page rendered it.
HOSTILE = {
    "not_utf8": b"\xff<script>alert(1)</script>",
    "bad_json": b"**bold** <img src=x onerror=alert(1)>",
    "not_object": b"[1, 2, 3]",
}


def send(bootstrap: str, topic: str, values: list[bytes], partition: int | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        if partition is None:
            producer.produce(topic, value=value)
        else:
            producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


@pytest.fixture
def dumped(kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """ROWS good rows and the HOSTILE messages on the topic, dumped by the raw dump; its group."""
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    _, values = messages.encode(generator.generate(ROWS, seed=3, deployment="both"))
    send(kafka_broker, kafka_topic, [v.encode() for v in values.to_pylist()] + list(HOSTILE.values()))
    with dg.instance_for_test() as instance:
        assert dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=instance).success
    return group


def test_topics_throughput_and_lag_read_only(kafka_broker: str, kafka_topic: str, dumped: str) -> None:
    config = client_config()
    assert kafka_topic in console.topic_names(config)
    mine = [p for p in console.partitions(config) if p.topic == kafka_topic]
    assert [p.partition for p in mine] == [0, 1, 2]
    assert sum(p.messages for p in mine) == ROWS + len(HOSTILE)
    assert [p.recent for p in mine] == [p.messages for p in mine]  # all produced within the window
    assert dumped in console.consumer_groups(config)
    assert [p.lag for p in console.group_lag(config, dumped, kafka_topic)] == [0, 0, 0]

    time.sleep(3)
    send(kafka_broker, kafka_topic, [b"{}"] * 5, partition=1)
    recent = {p.partition: p.recent for p in console.partitions(config, [kafka_topic], window_s=2.5)}
    assert recent == {0: 0, 1: 5, 2: 0}
    before = group_offsets(kafka_broker, kafka_topic, dumped)
    assert [p.lag for p in console.group_lag(config, dumped, kafka_topic)] == [0, 5, 0]
    assert group_offsets(kafka_broker, kafka_topic, dumped) == before  # looking committed nothing


def test_dead_letters_listed_filtered_and_escaped(kafka_topic: str, dumped: str, capsys: pytest.CaptureFixture) -> None:
    directory = settings.dead_letter_dir()
    every = letters(directory).to_pylist()
    assert sorted(r["kind"] for r in every) == sorted(HOSTILE)
    by_kind = {r["kind"]: r for r in every}
    assert by_kind["not_utf8"]["first_bytes"] == "\\xff<script>alert(1)</script>"
    assert by_kind["not_utf8"]["bytes"] == len(HOSTILE["not_utf8"])
    assert [r["kind"] for r in letters(directory, ["bad_json"]).to_pylist()] == ["bad_json"]
    now = datetime.now(timezone.utc)
    assert letters(directory, since=now + timedelta(minutes=1)).num_rows == 0
    assert letters(directory, until=now - timedelta(hours=1)).num_rows == 0
    assert letters(directory, since=now - timedelta(hours=1), until=now).num_rows == len(HOSTILE)

    row = by_kind["bad_json"]
    position = Position(kafka_topic, row["kafka_partition"], row["kafka_offset"])
    assert raw_bytes(directory, position)[0] == HOSTILE["bad_json"]
    assert escaped(b"a\nb\x00" * 100, limit=6) == "a\\nb\\x00a\\n…"

    assert redset(["dead-letters", "list", "--kind", "not_utf8"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert f"{kafka_topic}:{by_kind['not_utf8']['kafka_partition']}:{by_kind['not_utf8']['kafka_offset']}" in line
    out = directory.parent / "letter.bin"
    assert redset(["dead-letters", "show", f"{position.topic}:{position.partition}:{position.offset}", "--raw-out", str(out)]) == 0
    assert out.read_bytes() == HOSTILE["bad_json"]
    assert redset(["dead-letters", "show", f"{kafka_topic}:9:9"]) == 1
    assert f"no dead letter at {kafka_topic}:9:9" in capsys.readouterr().err


def test_kafka_page_shows_topics_lag_and_escaped_letters(kafka_topic: str, dumped: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("REDSET_SERVING_DIR", str(tmp_path / "no-snapshot-yet"))
    at = AppTest.from_file(str(APP), default_timeout=60).run().switch_page("views/kafka.py").run()
    assert not at.exception, at.exception
    topics, lag, dead = (df.value for df in at.dataframe)
    assert topics[topics["topic"] == kafka_topic]["messages"].sum() == ROWS + len(HOSTILE)
    assert lag["lag"].tolist() == [0, 0, 0]
    assert sorted(dead["kind"]) == sorted(HOSTILE)
    assert "\\xff<script>alert(1)</script>" in dead["first_bytes"].tolist()
    rendered = " ".join(m.value for m in [*at.markdown, *at.caption, *at.title, *at.subheader])
    assert "<script>" not in rendered and "onerror" not in rendered
    [opened] = at.code  # the letter the picker opens first, escaped
    assert opened.value in {escaped(v, limit=4096) for v in HOSTILE.values()}


def test_kafka_page_shows_a_failed_replay_as_one_more_attempt(
    kafka_broker: str, kafka_topic: str, dumped: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [bad] = letters(settings.dead_letter_dir(), ["bad_json"]).to_pylist()
    first = f"{kafka_topic}:{bad['kafka_partition']}:{bad['kafka_offset']}"
    # What `redset dead-letters replay` sends, still bad: the dump makes it a letter naming `first`.
    producer = Producer({"bootstrap.servers": kafka_broker})
    producer.produce(kafka_topic, value=b'{"query_id": ', headers=[(schema.REPLAY_HEADER, first.encode())])
    assert producer.flush(30) == 0
    with dg.instance_for_test() as instance:
        assert dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=instance).success
    monkeypatch.setenv("REDSET_SERVING_DIR", str(tmp_path / "no-snapshot-yet"))
    at = AppTest.from_file(str(APP), default_timeout=60).run().switch_page("views/kafka.py").run()
    assert not at.exception, at.exception
    dead = at.dataframe[2].value.set_index("kind")
    assert sorted(dead.index) == sorted(HOSTILE)  # still one letter per message first sent
    assert dead["attempts"].to_dict() == {"bad_json": 2, "not_object": 1, "not_utf8": 1}
    assert dead.loc["bad_json", "position"] == first and dead.loc["bad_json", "bytes"] == len(b'{"query_id": ')
