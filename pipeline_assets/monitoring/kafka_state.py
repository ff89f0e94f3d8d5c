"""Where the pipeline's consumer group stands on its topic, read without joining the group.

The collector asks an AdminClient for the group's committed offsets and the partitions'
watermarks. It never creates a consumer under the pipeline's group id, so a scrape can neither
commit for it nor trigger a rebalance of a running dump.
"""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from pipeline_assets.kafka.config import LIBRDKAFKA_LOG
from pipeline_assets.raw.offsets import PartitionOffsets

# A scrape must answer within Prometheus' scrape timeout (10 s by default), broker down or not.
TIMEOUT_S = 3.0
RETRY_S = 0.2
_COORDINATOR_BUSY = {
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE
}  # fmt: skip


class KafkaUnavailable(RuntimeError):
    """The broker did not answer, or the topic does not exist (yet)."""


def admin_client(config: dict[str, object]) -> AdminClient:
    """An AdminClient of the project's client config: no group, nothing to commit."""
    keep = {k: v for k, v in config.items() if not k.startswith(("group.", "enable.auto", "auto.offset"))}
    # Each refused connection is a librdkafka line: to LIBRDKAFKA_LOG (shown by `redset -v`), not stderr.
    return AdminClient(keep, logger=LIBRDKAFKA_LOG)


def group_offsets(admin: AdminClient, topic: str, group: str, timeout: float = TIMEOUT_S) -> list[PartitionOffsets]:
    """Low and high watermark and `group`'s committed offset of every partition of `topic`,
    asked again while the group's coordinator loads or moves (a new or restarted broker)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return _group_offsets(admin, topic, group, timeout)
            except KafkaUnavailable as exc:
                if not _transient(exc.__cause__) or time.monotonic() + RETRY_S > deadline:
                    raise
                time.sleep(RETRY_S)
    finally:
        admin.poll(0)  # hands librdkafka's queued log lines to LIBRDKAFKA_LOG


def _transient(exc: BaseException | None) -> bool:
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in _COORDINATOR_BUSY)


def _group_offsets(admin: AdminClient, topic: str, group: str, timeout: float) -> list[PartitionOffsets]:
    try:
        info = admin.list_topics(topic, timeout=timeout).topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise KafkaUnavailable(f"topic '{topic}' is not available")
        partitions = [TopicPartition(topic, p) for p in sorted(info.partitions)]
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        committed = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group].result(timeout)
        low = _offsets(admin, partitions, OffsetSpec.earliest(), timeout)
        high = _offsets(admin, partitions, OffsetSpec.latest(), timeout)
    except KafkaException as exc:
        raise KafkaUnavailable(str(exc.args[0] if exc.args else exc)) from exc
    except TimeoutError as exc:  # a future's result(timeout)
        raise KafkaUnavailable(f"no answer within {timeout:.0f}s") from exc
    by_partition = {tp.partition: tp.offset for tp in committed.topic_partitions}
    return [
        PartitionOffsets(tp.partition, low[tp.partition], high[tp.partition], _committed(by_partition.get(tp.partition)))
        for tp in partitions
    ]


def _offsets(admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout: float) -> dict[int, int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {tp.partition: future.result(timeout).offset for tp, future in futures.items()}


def _committed(offset: int | None) -> int | None:
    """None for a partition the group never committed (librdkafka says -1001, OFFSET_INVALID)."""
    return offset if offset is not None and offset >= 0 else None
