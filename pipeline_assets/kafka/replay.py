"""Producing dead letters again: `redset dead-letters replay`.

Each message goes to the pipeline's topic with its key and a header, schema.REPLAY_HEADER =
"topic:partition:offset" of the letter's first position, which the raw dump keeps as replay_of: dbt
counts the replays of one position once, and the offsets check marks the letter
dead_letter_replayed. The producer has the project's settings (producer.PRODUCER_DEFAULTS, then
KAFKA_*) and is idempotent; every message gets a delivery report, so each line printed says where
it landed or why not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from pipeline_assets import schema
from pipeline_assets.kafka.config import LIBRDKAFKA_LOG, client_config
from pipeline_assets.kafka.producer import PRODUCER_DEFAULTS, produce_waiting

FLUSH_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Outgoing:
    """One message to send again: the letter's first position, its key and the bytes to send."""

    replay_of: str  # "topic:partition:offset"
    key: str | None
    value: bytes | None


@dataclass
class Delivered:
    """Where one replay landed (`position`), or why it did not (`error`)."""

    replay_of: str
    position: str | None = None
    error: str | None = None


def replay(topic: str, messages: Sequence[Outgoing], timeout: float = FLUSH_TIMEOUT_S) -> list[Delivered]:
    """Produce `messages` to `topic`, each with the replay header; one result per message, in order."""
    results = [Delivered(m.replay_of) for m in messages]
    producer = Producer(PRODUCER_DEFAULTS | client_config() | {"enable.idempotence": True, "logger": LIBRDKAFKA_LOG})

    def report(result: Delivered):
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                result.error = err.str()
            else:
                result.position = f"{msg.topic()}:{msg.partition()}:{msg.offset()}"

        return on_delivery

    for message, result in zip(messages, results, strict=True):
        headers = [(schema.REPLAY_HEADER, message.replay_of.encode())]
        produce_waiting(producer, topic, message.value, message.key, headers=headers, on_delivery=report(result))
        producer.poll(0)
    left = producer.flush(timeout)
    for result in results:
        if result.position is None and result.error is None:
            result.error = f"no delivery report within {timeout:.0f}s ({left} message(s) still queued)"
    return results
