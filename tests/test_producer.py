"""The replay producer against the real local broker: what goes in comes out, in order."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from tqdm import tqdm

from pipeline_assets import schema
from pipeline_assets.cli import main as cli
from pipeline_assets.kafka import producer
from pipeline_assets.source import generator, reader

ROWS = 100_000


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 120.0) -> list:
    """Every message of `topic` from the start, with a plain confluent-kafka consumer."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })  # fmt: skip
    consumer.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                assert msg.error() is None, msg.error()
                out.append(msg)
        # Anything beyond `expected` would be a duplicate: give it a moment to show up.
        out.extend(m for m in consumer.consume(num_messages=10_000, timeout=2.0) if m.error() is None)
    finally:
        consumer.close()
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    table = generator.generate(ROWS, seed=11)
    return generator.write(table, tmp_path_factory.mktemp("produce") / "source.parquet"), table


def _decode(text: bytes) -> dict:
    row = json.loads(text)
    row["arrival_timestamp"] = datetime.fromisoformat(row["arrival_timestamp"])
    return row


def assert_each_key_in_arrival_order(messages: list, rows: list[dict]) -> None:
    """Per key: one partition, and offsets follow `rows`' order (the source's arrival order)."""
    expected_order: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        expected_order[schema.message_key(row["deployment"], row["instance_id"])].append(row["query_id"])
    by_key: dict[str, list] = defaultdict(list)
    for msg in messages:
        by_key[msg.key().decode()].append(msg)
    assert by_key.keys() == expected_order.keys()
    for key, msgs in by_key.items():
        assert len({m.partition() for m in msgs}) == 1, key
        in_offset_order = sorted(msgs, key=lambda m: m.offset())
        assert [json.loads(m.value())["query_id"] for m in in_offset_order] == expected_order[key], key


@pytest.mark.kafka
def test_every_row_arrives_once_in_order_and_unchanged(source, kafka_broker: str, kafka_topic: str) -> None:
    path, table = source
    stats = producer.produce(path, kafka_topic, bootstrap=kafka_broker, progress=False)
    assert (stats.rows, stats.errors) == (ROWS, 0)

    messages = consume_all(kafka_broker, kafka_topic, ROWS)
    assert len(messages) == ROWS
    assert stats.bytes == sum(len(m.key()) + len(m.value()) for m in messages)

    expected = table.to_pylist()  # the generator writes rows in arrival order
    assert_each_key_in_arrival_order(messages, expected)

    # Every value equals its source row: NULLs, floats, booleans, timestamps, types included.
    received = {}
    for msg in messages:
        row = _decode(msg.value())
        assert list(row) == list(schema.COLUMN_NAMES)
        assert msg.key().decode() == schema.message_key(row["deployment"], row["instance_id"])
        received[(row["deployment"], row["instance_id"], row["query_id"])] = row
    assert len(received) == ROWS
    for want in expected:
        got = received[(want["deployment"], want["instance_id"], want["query_id"])]
        assert got == want
        assert [type(v) for v in got.values()] == [type(v) for v in want.values()], want


@pytest.mark.kafka
def test_limit_and_paced_replay_keep_order(source, kafka_broker: str, kafka_topic: str) -> None:
    """The paced path, really waiting (about a second in all), sends the first `limit` rows in order."""
    path, table = source
    first = table.slice(0, 3_000)
    span_s = (first["arrival_timestamp"][-1].as_py() - first["arrival_timestamp"][0].as_py()).total_seconds()
    stats = producer.produce(path, kafka_topic, bootstrap=kafka_broker, speed=span_s, limit=3_000, progress=False,
                             batch_size=500)  # fmt: skip
    assert (stats.rows, stats.errors) == (3_000, 0)
    got = consume_all(kafka_broker, kafka_topic, 3_000)
    assert len(got) == 3_000
    assert_each_key_in_arrival_order(got, first.to_pylist())


@pytest.mark.kafka
def test_creates_a_missing_topic_with_the_requested_partitions(source, kafka_broker: str) -> None:
    topic = f"test.created.{uuid.uuid4().hex[:8]}"
    stats = producer.produce(source[0], topic, bootstrap=kafka_broker, limit=100, partitions=5, progress=False)
    assert stats.errors == 0
    metadata = AdminClient({"bootstrap.servers": kafka_broker}).list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 5
    assert not producer.ensure_topic(topic, 3, kafka_broker)  # exists: left alone


@pytest.mark.kafka
def test_rejected_messages_are_counted_and_fail_the_command(source, kafka_broker: str, capsys) -> None:
    """The broker refuses messages over the topic's max.message.bytes: a real delivery error."""
    topic = f"test.tiny.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    admin.create_topics([NewTopic(topic, 3, 1, config={"max.message.bytes": "200"})])[topic].result(timeout=30)

    stats = producer.produce(source[0], topic, bootstrap=kafka_broker, limit=1_000, progress=False)
    assert stats.rows == 1_000
    assert stats.errors == 1_000
    assert "too large" in stats.first_error

    code = cli.main(["produce", "--source", str(source[0]), "--topic", topic, "--limit", "50"])
    assert code == 1
    assert "NOT DELIVERED" in capsys.readouterr().err


def test_unreachable_kafka_is_a_clear_error(source, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(producer, "ADMIN_TIMEOUT_S", 2.0)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    with pytest.raises(producer.ProduceError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"):
        producer.produce(source[0], "redset.queries", limit=10, progress=False)
    assert cli.main(["produce", "--source", str(source[0]), "--limit", "10"]) == 1
    assert "redset kafka start" in capsys.readouterr().err


def test_a_missing_source_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # the file is checked before Kafka
    missing = tmp_path / "nope.parquet"
    assert cli.main(["produce", "--source", str(missing), "--topic", "test.missing"]) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err


class _FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_clock_paces_by_arrival_gaps_after_the_full_speed_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pure: with speed 3600, an hour of data takes a second; the first 2 hours go at once."""
    fake = _FakeTime()
    monkeypatch.setattr(producer.time, "monotonic", fake)
    hours = [0, 1, 2, 2, 3, 5]
    arrivals = pa.array([datetime(2024, 3, 1, h) for h in hours], pa.timestamp("us"))
    clock = producer._Clock(speed=3600, full_speed_hours=2)
    offsets = clock.offsets(arrivals)
    assert offsets.tolist() == [-2.0, -1.0, 0.0, 0.0, 1.0, 3.0]

    assert clock.sendable(offsets, 0) == (2, 0.0)  # the full-speed rows, unpaced
    fake.now = 1010.0
    assert clock.sendable(offsets, 2) == (4, 0.0)  # the anchor: hour 2 is due now
    end, wait = clock.sendable(offsets, 4)
    assert end == 4 and wait == pytest.approx(producer.MAX_SLEEP_S)  # hour 3 is due a second later
    fake.now = 1011.0
    assert clock.sendable(offsets, 4) == (5, 0.0)
    fake.now = 1012.9
    end, wait = clock.sendable(offsets, 5)
    assert end == 5 and wait == pytest.approx(0.1)
    assert producer._Clock(None, 0).offsets(arrivals) is None  # max speed: no pacing


class _FakeClockAndProducer:
    """For the replay loop alone: a clock that moves only when the loop waits in poll(), and a
    producer that notes when each row was queued."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sent: list[tuple[float, bytes]] = []

    def monotonic(self) -> float:
        return self.now

    def poll(self, timeout: float) -> int:
        self.now += timeout
        return 0

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((self.now, value))


def test_replay_queues_each_row_when_its_arrival_is_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row i is queued (arrival_i - arrival_0) / speed seconds after the first, and no earlier."""
    fake = _FakeClockAndProducer()
    monkeypatch.setattr(producer.time, "monotonic", fake.monotonic)
    path = generator.write(generator.generate(300, seed=5), tmp_path / "rows.parquet")
    arrivals = [r["arrival_timestamp"] for r in next(reader.iter_batches(path)).to_pylist()]
    speed = (arrivals[-1] - arrivals[0]).total_seconds() / 20  # the whole replay: 20 fake seconds

    rows, _ = producer._replay(fake, "t", reader.iter_batches(path, batch_rows=64), producer._Clock(speed, 0),
                               producer._Deliveries(), tqdm(disable=True))  # fmt: skip
    assert rows == 300
    due = [(a - arrivals[0]).total_seconds() / speed for a in arrivals]
    assert [t for t, _ in fake.sent] == pytest.approx(due, abs=1e-6)
    assert [json.loads(v)["arrival_timestamp"] for _, v in fake.sent] == [a.isoformat() for a in arrivals]
    assert fake.now == pytest.approx(20.0)
