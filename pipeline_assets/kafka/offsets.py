"""Where a consumer group stands on a topic: committed offsets, watermarks and lag.

Shared by the raw dump (what to consume, lag after) and the lag sensor (whether to start a
run). Reading committed offsets never changes them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

_TRANSIENT = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._WAIT_COORD,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
}


class TopicMissing(RuntimeError):
    """The topic does not exist (yet): nothing to consume."""


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    low: int  # first offset still in the log
    high: int  # offset the next produced message gets (high watermark)
    committed: int | None  # the group's committed offset; None when it never committed

    @property
    def start(self) -> int:
        """Where the group resumes: its committed offset, or the start of the log."""
        if self.committed is None or self.committed < self.low:
            return self.low
        return self.committed

    @property
    def lag(self) -> int:
        return max(0, self.high - self.start)


def partition_offsets(consumer: Consumer, topic: str, timeout: float = 30.0) -> list[PartitionOffsets]:
    """Committed offset (of the consumer's group.id), low and high watermark of every partition."""
    metadata = consumer.list_topics(topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        reason = info.error.str() if info is not None and info.error is not None else "no partitions"
        raise TopicMissing(f"topic '{topic}' is not available: {reason}")
    partitions = sorted(info.partitions)
    committed = _committed(consumer, [TopicPartition(topic, p) for p in partitions], timeout)
    result = []
    for tp in committed:
        if tp.error is not None:
            raise KafkaException(tp.error)
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout, cached=False)
        offset = None if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset
        result.append(PartitionOffsets(tp.partition, low, high, offset))
    return result


def _committed(consumer: Consumer, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
    """consumer.committed(), retried while the group coordinator moves or loads (a new or
    restarting broker answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for a while)."""
    deadline = time.monotonic() + timeout
    retrying = Retrying(
        retry=retry_if_exception(_transient), stop=stop_after_delay(timeout), wait=wait_fixed(0.2), reraise=True
    )
    return retrying(lambda: consumer.committed(partitions, timeout=max(1.0, deadline - time.monotonic())))


def _transient(exc: BaseException) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in _TRANSIENT)


def total_lag(offsets: list[PartitionOffsets]) -> int:
    return sum(o.lag for o in offsets)


def watermark_key(topic: str, offsets: list[PartitionOffsets]) -> str:
    """The high watermarks as one stable string, e.g. 'redset.queries:0=120,1=98,2=131'."""
    return f"{topic}:" + ",".join(f"{o.partition}={o.high}" for o in offsets)


def range_key(topic: str, offsets: list[PartitionOffsets]) -> str:
    """What a run would take, per partition: 'redset.queries:0=100-120,1=98-98,2=0-131'.

    The high watermarks, with where the group stands: a run that stopped at max_messages
    leaves the watermarks unchanged, and the next request still gets a new key.
    """
    return f"{topic}:" + ",".join(f"{o.partition}={o.start}-{o.high}" for o in offsets)
