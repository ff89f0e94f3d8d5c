"""Helpers of the raw-stage tests: a private data folder and group per test, reading back."""

import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from pipeline_assets import settings
from pipeline_assets.kafka import offsets, producer
from pipeline_assets.raw import dead_letters, zone_read
from pipeline_assets.source import generator


def use_private_dirs(monkeypatch: pytest.MonkeyPatch, data_dir: Path, topic: str) -> str:
    """Point settings at `data_dir` and `topic`, with a fresh consumer group; returns the group."""
    group = f"test-raw-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDSET_DATA_DIR", str(data_dir))
    monkeypatch.setenv("REDSET_TOPIC", topic)
    monkeypatch.setenv("REDSET_CONSUMER_GROUP", group)
    return group


def raw_rows(columns: list[str] | None = None) -> pa.Table:
    return zone_read.read_raw_zone(settings.zone_url("raw"), columns)


def dead_rows(columns: list[str] | None = None) -> pa.Table:
    return dead_letters.read_dead_letters(settings.zone_url("dead_letters"), columns)


def group_offsets(bootstrap: str, topic: str, group: str) -> list[offsets.PartitionOffsets]:
    """Committed offsets and watermarks, read without joining or committing."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return offsets.partition_offsets(consumer, topic)
    finally:
        consumer.close()


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in sorted(partitions)}
    finally:
        consumer.close()


def assert_offsets_exactly_once(table: pa.Table, highs: dict[int, int]) -> int:
    """Raw rows + dead letters, deduplicated on (partition, offset), are exactly the offsets
    0..high-1 of every partition. Returns how many deliveries were duplicates."""
    duplicates = 0
    for partition, high in highs.items():
        mine = table.filter(pc.equal(table.column("kafka_partition"), partition)).column("kafka_offset")
        distinct = pc.unique(mine)
        assert len(distinct) == high, f"partition {partition}: {len(distinct)} distinct offsets, {high} produced"
        if high:
            assert (pc.min(distinct).as_py(), pc.max(distinct).as_py()) == (0, high - 1), f"partition {partition}"
        duplicates += len(mine) - len(distinct)
    assert set(pc.unique(table.column("kafka_partition")).to_pylist()) <= set(highs)
    return duplicates


def produce_rows(bootstrap: str, topic: str, rows: int, seed: int, tmp_path: Path) -> None:
    """`rows` generated rows (seed `seed`) produced to `topic`."""
    source = generator.write(generator.generate(rows, seed=seed), tmp_path / f"rows-{seed}.parquet")
    assert producer.produce(source, topic, bootstrap=bootstrap, progress=False).errors == 0


def recreate_topic(bootstrap: str, topic: str) -> str:
    """Delete `topic` and create it again (3 partitions): a topic reset. Returns the new topic id,
    once the broker's metadata gives it."""
    from pipeline_assets.kafka import topic_ids

    config = {"bootstrap.servers": bootstrap}
    before = topic_ids.topic_id(config, topic)
    admin = AdminClient(config)
    admin.delete_topics([topic])[topic].result(timeout=30)
    deadline = time.monotonic() + 60
    while True:  # the broker may still be deleting it
        try:
            admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    while (new := topic_ids.topic_id(config, topic)) in (None, before):  # the new metadata spreads
        assert time.monotonic() < deadline, f"topic {topic} has no new id"
        time.sleep(0.2)
    return new
