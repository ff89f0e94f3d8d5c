"""Where the pipeline's consumer group stands on its topic, read without joining or committing.

The collector's consumer carries the pipeline's group id only so that `committed()` can fetch the
group's offsets (an OffsetFetch request): it never subscribes, so it never joins the group or
triggers a rebalance, and auto-commit is off and nothing calls commit(). The lag sensor reads the
same way (kafka/offsets.py). (AdminClient.list_consumer_group_offsets would need no group id, but
crashed the interpreter here, confluent-kafka 2.16.)
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException

from pipeline_assets.kafka.config import LIBRDKAFKA_LOG
from pipeline_assets.kafka.console import read_only_consumer
from pipeline_assets.kafka.offsets import PartitionOffsets, TopicMissing, partition_offsets

# A scrape must answer within Prometheus' scrape timeout (10 s by default), broker down or not.
TIMEOUT_S = 3.0


class KafkaUnavailable(RuntimeError):
    """The broker did not answer, or the topic does not exist (yet)."""


def reader(config: dict[str, object], group: str) -> Consumer:
    """A consumer that can read `group`'s committed offsets and can never commit them."""
    # Each refused connection is a librdkafka line on stderr: none while LIBRDKAFKA_LOG is silenced
    # (the CLI without -v).
    if not LIBRDKAFKA_LOG.isEnabledFor(logging.CRITICAL):
        config = {**config, "log_level": 0}
    return read_only_consumer(config, group)


def group_offsets(consumer: Consumer, topic: str, timeout: float = TIMEOUT_S) -> list[PartitionOffsets]:
    """Low and high watermark and the group's committed offset of every partition of `topic`."""
    try:
        return partition_offsets(consumer, topic, timeout=timeout)
    except (KafkaException, TopicMissing) as exc:
        raise KafkaUnavailable(str(exc.args[0] if exc.args else exc)) from exc
