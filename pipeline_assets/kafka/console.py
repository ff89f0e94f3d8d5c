"""What the dashboards' Kafka page shows: topics, partitions, watermarks, recent throughput, and
each consumer group's lag. Read-only: no consumer here subscribes or commits.

Throughput needs no sampling: Kafka finds the first offset at or after a timestamp
(`offsets_for_times`), so the messages of the last `window_s` seconds are the high watermark
minus that offset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from pipeline_assets.kafka.offsets import PartitionOffsets, partition_offsets

WINDOW_S = 300  # "messages per second over the last minutes"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    low: int  # first offset still in the log
    high: int  # the next message's offset
    recent: int  # messages appended in the last window

    @property
    def messages(self) -> int:
        return self.high - self.low


def read_only_consumer(config: dict[str, object], group: str | None = None) -> Consumer:
    """A consumer that looks and never commits; `group` only to fetch that group's offsets."""
    return Consumer({**config, "group.id": group or "redset-console-read-only", "enable.auto.commit": False,
                     "enable.auto.offset.store": False})  # fmt: skip


def topic_names(config: dict[str, object], timeout: float = TIMEOUT_S) -> list[str]:
    """The broker's topics, Kafka's internal ones (`__consumer_offsets`, ...) left out."""
    metadata = AdminClient(config).list_topics(timeout=timeout)
    return sorted(t for t in metadata.topics if not t.startswith("__"))


def partitions(config: dict[str, object], topics: list[str] | None = None, window_s: float = WINDOW_S,
               timeout: float = TIMEOUT_S) -> list[PartitionState]:  # fmt: skip
    """Every partition of `topics` (default: all), with its watermarks and last window's messages."""
    consumer = read_only_consumer(config)
    try:
        metadata = consumer.list_topics(timeout=timeout)
        names = topic_names(config, timeout) if topics is None else topics
        since_ms = int((time.time() - window_s) * 1000)
        out = []
        for topic in names:
            info = metadata.topics.get(topic)
            if info is None or info.error is not None:
                continue
            found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in sorted(info.partitions)],
                                               timeout=timeout)  # fmt: skip
            for tp in found:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout, cached=False)
                recent = high - tp.offset if tp.offset >= 0 else 0  # -1: nothing that recent
                out.append(PartitionState(topic, tp.partition, low, high, max(0, recent)))
        return out
    finally:
        consumer.close()


def consumer_groups(config: dict[str, object], timeout: float = TIMEOUT_S) -> list[str]:
    """The ids of the broker's consumer groups."""
    admin = AdminClient(config)
    # Asked before the client knows the brokers, ListGroups goes to none of them and answers [].
    admin.list_topics(timeout=timeout)
    listed = admin.list_consumer_groups().result(timeout=timeout)
    return sorted(g.group_id for g in listed.valid)


def group_lag(config: dict[str, object], group: str, topic: str, timeout: float = TIMEOUT_S) -> list[PartitionOffsets]:
    """`group`'s committed offset and lag on each partition of `topic` (read without joining it)."""
    consumer = read_only_consumer(config, group)
    try:
        return partition_offsets(consumer, topic, timeout=timeout)
    finally:
        consumer.close()
