"""Offsets Kafka's retention deleted before the raw dump read them (pipeline_assets/lost_offsets.py):
reported once as lost upstream, and raw_offsets_contiguous stays green. The deletion is Kafka's
own (AdminClient.delete_records moves the log start offset as retention does), on a real broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from raw_support import use_private_dirs

from pipeline_assets import lost_offsets, settings
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump import consume
from pipeline_assets.warehouse import checks


def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, value=b"{}", key=str(i).encode(), partition=0)
    assert producer.flush(30) == 0


def _dump(topic: str, group: str) -> consume.DumpStats:
    options = consume.DumpOptions(
        topic=topic, group_id=group, raw_dir=settings.raw_dir(), dead_letter_dir=settings.dead_letter_dir(),
        batch_id=f"b-{group}", max_messages=1_000,
    )  # fmt: skip
    consumer = KafkaResource().consumer(group, **consume.CONSUMER_TUNING)
    try:
        return consume.dump(consumer, options, log=lambda _: None)
    finally:
        close_within(consumer)


def _lost_alerts() -> list[str]:
    path = settings.alert_log_path()
    return [line for line in path.read_text().splitlines() if " LOST UPSTREAM " in line] if path.exists() else []


@pytest.mark.kafka
def test_offsets_deleted_by_retention_before_read_are_lost_upstream_once_not_red_forever(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    _produce(kafka_broker, kafka_topic, 10)
    _dump(kafka_topic, group)  # offsets 0..9 read and committed
    _produce(kafka_broker, kafka_topic, 10)  # 10..19: deleted before any dump reads them
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    [future] = admin.delete_records([TopicPartition(kafka_topic, 0, 20)]).values()
    assert future.result(timeout=30).low_watermark == 20
    _produce(kafka_broker, kafka_topic, 10)  # 20..29

    stats = _dump(kafka_topic, group)
    assert stats.skipped == {0: 10} and stats.messages == 10
    assert lost_offsets.read(settings.raw_dir(), kafka_topic) == [(0, 10, 20)]
    [alert] = _lost_alerts()
    assert "partition=0" in alert and "offsets 10..19 (10) were deleted by retention before they were read" in alert

    result = checks.raw_offsets_contiguous()
    assert result.passed, result.description
    [p0] = [c for c in result.metadata["partitions"].data if c["partition"] == 0]
    assert (p0["first_offset"], p0["last_offset"], p0["missing_offsets"], p0["lost_upstream"]) == (0, 29, 0, 10)
    assert result.metadata["lost_upstream_offsets"].value == 10

    # Later runs: nothing new, no second alert, and the check stays green.
    _produce(kafka_broker, kafka_topic, 5)
    assert _dump(kafka_topic, group).skipped == {}
    assert len(_lost_alerts()) == 1
    assert checks.raw_offsets_contiguous().passed


def test_a_gap_that_was_not_lost_upstream_still_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_raw_checks import write_kafka_rows

    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDSET_TOPIC", "t")
    write_kafka_rows(list(range(0, 10)) + list(range(20, 40)))
    lost_offsets.record(settings.raw_dir(), "t", 0, 10, 15)  # only half the gap was lost upstream
    result = checks.raw_offsets_contiguous()
    assert not result.passed and "partition 0: 5 offsets missing between 0 and 39" in result.description
    assert not lost_offsets.record(settings.raw_dir(), "t", 0, 10, 15)  # recorded once
