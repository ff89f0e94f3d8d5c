"""The checkpoint's commit and the offsets lookup retry what the broker may answer while it
restarts, and give up at once on what librdkafka calls fatal (fake consumers: no broker). The
commit is asynchronous and counts once the committed position read back reached it."""

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

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is True  # never a wait without a deadline
        self.calls.append(offsets)
        if self.errors:
            raise KafkaException(self.errors.pop(0))

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
    assert consumer.calls == [POSITIONS] * 4  # two failed commits, a commit, its confirmation
    assert len(lines) == 2 and all(line.startswith("commit failed, retrying: ") for line in lines)
    assert "broker down" in lines[0] and "coordinator moving" in lines[1]


def test_a_commit_not_yet_confirmed_is_issued_again_until_the_position_reaches_it() -> None:
    class Lagging(FlakyConsumer):
        def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
            self.calls.append(partitions)
            self.reads = getattr(self, "reads", 0) + 1
            # The first read still shows partition 1 at its old position.
            return [partitions[0], TopicPartition("t", 1, 90)] if self.reads == 1 else partitions

    consumer, lines = Lagging(), []
    checkpoint.commit(consumer, POSITIONS, lines.append)
    assert len(consumer.calls) == 4 and len(lines) == 1  # commit, read, commit again, read
    assert "commit not confirmed yet (p1: 90 < 98)" in lines[0]


def test_a_commit_never_confirmed_gives_up_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stuck(FlakyConsumer):
        def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
            self.calls.append(partitions)
            return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    monkeypatch.setattr(checkpoint, "COMMIT_TIMEOUT_S", 0.05)
    with pytest.raises(KafkaException, match=r"commit not confirmed yet \(p0: -1001 < 120, p1: -1001 < 98\)"):
        checkpoint.commit(Stuck(), POSITIONS, lambda _: None)


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
