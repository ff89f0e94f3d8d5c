"""Every wait on Kafka has a deadline (raw/dump/checkpoint.py's commit, kafka/closing.py), against
a real broker that hangs: its JVM is stopped (SIGSTOP), so connections stay open and nothing
answers, the case a network that drops packets makes too. A broker of the test's own: stopping
the session's would disturb other tests."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import start_test_broker

from pipeline_assets.kafka import broker
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.raw.dump import checkpoint


@pytest.mark.kafka
def test_commit_and_close_against_a_hung_broker_end_at_their_deadlines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "kafka"
    own = start_test_broker(home)
    stopped = False
    try:
        topic, group = f"test.deadlines.{uuid.uuid4().hex[:8]}", f"test-deadlines-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": own.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
        producer = Producer({"bootstrap.servers": own.bootstrap})
        for i in range(5):
            producer.produce(topic, value=b"{}", key=str(i).encode(), partition=0)
        assert producer.flush(30) == 0
        del producer
        consumer = Consumer({"bootstrap.servers": own.bootstrap, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "earliest"})  # fmt: skip
        consumer.subscribe([topic])
        got = []
        for _ in range(20):  # bounded: the assert below says when the messages never came
            got += [m for m in consumer.consume(num_messages=5, timeout=1) if m.error() is None]
            if len(got) == 5:
                break
        assert len(got) == 5
        checkpoint.commit(consumer, [TopicPartition(topic, 0, 2)], print)  # a live broker: confirmed

        os.kill(own.pid, signal.SIGSTOP)
        stopped = True
        monkeypatch.setattr(checkpoint, "COMMIT_TIMEOUT_S", 3.0)
        monkeypatch.setattr(checkpoint, "COMMIT_CHECK_TIMEOUT_S", 1.0)
        lines: list[str] = []
        with pytest.raises(KafkaException):
            checkpoint.commit(consumer, [TopicPartition(topic, 0, 5)], lines.append)
        assert lines and all(line.startswith("commit failed, retrying: ") for line in lines)
        # librdkafka's close waits on the hung broker; the caller goes on at the deadline.
        assert close_within(consumer, 3.0, lines.append) is False
        assert lines[-1] == "consumer.close() did not finish within 3s; going on without it"
    finally:
        if stopped:
            os.kill(own.pid, signal.SIGCONT)
        broker.stop(home, quiet=True)
