"""The checkpoint's commit and the offsets lookup retry what the broker may answer while it
restarts, and give up at once on what librdkafka calls fatal (fake consumers: no broker)."""

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from pipeline_assets.kafka import offsets
from pipeline_assets.raw.dump import checkpoint

POSITIONS = [TopicPartition("t", 0, 120), TopicPartition("t", 1, 98)]


class FlakyConsumer:
    """commit() raises the given errors in turn, then succeeds; committed() likewise."""

    def __init__(self, *errors: KafkaError) -> None:
        self.errors = list(errors)
        self.calls: list[list[TopicPartition]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        assert asynchronous is False
        self.calls.append(offsets)
        if self.errors:
            raise KafkaException(self.errors.pop(0))
        return offsets

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.calls.append(partitions)
        if self.errors:
            raise KafkaException(self.errors.pop(0))
        return partitions


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "COMMIT_RETRY_WAIT_S", 0.0)


def test_a_commit_failing_with_a_retriable_error_is_retried_until_it_succeeds() -> None:
    consumer = FlakyConsumer(
        KafkaError(KafkaError._TRANSPORT, "broker down", retriable=True),
        KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE, "coordinator moving"),  # neither retriable nor fatal
    )
    lines: list[str] = []
    checkpoint.commit(consumer, POSITIONS, lines.append)
    assert consumer.calls == [POSITIONS] * 3
    assert len(lines) == 2 and all(line.startswith("commit failed, retrying: ") for line in lines)
    assert "broker down" in lines[0] and "coordinator moving" in lines[1]


def test_a_commit_answered_with_a_failed_partition_is_retried() -> None:
    class PartlyFailing(FlakyConsumer):
        def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
            self.calls.append(offsets)
            if len(self.calls) == 1:
                # TopicPartition.error is read-only: a stand-in with the one attribute read
                error = KafkaError(KafkaError.REBALANCE_IN_PROGRESS, "rebalancing", retriable=True)
                failed = SimpleNamespace(error=error)
                return [POSITIONS[0], failed]
            return offsets

    consumer, lines = PartlyFailing(), []
    checkpoint.commit(consumer, POSITIONS, lines.append)
    assert len(consumer.calls) == 2 and len(lines) == 1 and "rebalancing" in lines[0]


def test_a_fatal_commit_error_is_raised_at_once() -> None:
    consumer = FlakyConsumer(KafkaError(KafkaError._FENCED, "fenced", fatal=True))
    lines: list[str] = []
    with pytest.raises(KafkaException, match="fenced"):
        checkpoint.commit(consumer, POSITIONS, lines.append)
    assert len(consumer.calls) == 1 and lines == []


def test_a_commit_that_keeps_failing_gives_up_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "COMMIT_TIMEOUT_S", 0.0)
    consumer = FlakyConsumer(*[KafkaError(KafkaError._TRANSPORT, "still down", retriable=True)] * 5)
    with pytest.raises(KafkaException, match="still down"):
        checkpoint.commit(consumer, POSITIONS, lambda _: None)
    assert len(consumer.calls) == 1


def test_the_committed_offsets_lookup_retries_a_moving_coordinator_only() -> None:
    consumer = FlakyConsumer(KafkaError(KafkaError.NOT_COORDINATOR, "not coordinator"))
    assert offsets._committed(consumer, POSITIONS, timeout=5.0) == POSITIONS
    assert len(consumer.calls) == 2
    refused = FlakyConsumer(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED, "not allowed"))
    with pytest.raises(KafkaException, match="not allowed"):
        offsets._committed(refused, POSITIONS, timeout=5.0)
    assert len(refused.calls) == 1
