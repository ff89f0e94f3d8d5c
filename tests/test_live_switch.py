"""While live mode runs, the batch Kafka dump and marts builds stand aside, and its sensor keeps one run.

Raw batches are reported runless; the lag sensor reads a real broker's offsets first.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer

from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.job import keep_live_mode_running
from pipeline_assets.live.switch import LiveModeBusy, live_mode_active, one_live_loop
from pipeline_assets.orchestration.sensors import build_marts_on_new_raw_batches, kafka_lag_sensor
from pipeline_assets.raw import owed_dates


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    return tmp_path


@pytest.mark.kafka
def test_the_batch_dump_stands_aside_while_a_live_loop_runs(
    data_dir: Path, kafka_broker: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDSET_TOPIC", kafka_topic)
    producer = Producer({"bootstrap.servers": kafka_broker})
    producer.produce(kafka_topic, b"{}")
    assert producer.flush(30) == 0  # lag 1: without live mode the sensor would request a dump
    with dg.DagsterInstance.ephemeral() as instance:
        assert live_mode_active(instance) is None
        with one_live_loop("redset live"):
            result = kafka_lag_sensor(dg.build_sensor_context(instance=instance), kafka=KafkaResource())
            assert isinstance(result, dg.SkipReason)
            assert "live mode is on" in result.skip_message and "redset live" in result.skip_message
            with pytest.raises(LiveModeBusy, match="live mode already runs"), one_live_loop("a second one"):
                pass
        assert live_mode_active(instance) is None  # released: the batch path is back


def raw_batch(instance: dg.DagsterInstance, day: str, live: bool) -> None:
    """The owed-dates record a dump writes before its commit; live mode's batch ids start with live-."""
    owed_dates.record([date.fromisoformat(day)], f"{owed_dates.LIVE_PREFIX}s1-1" if live else "a-dump-run")


def test_the_marts_sensor_leaves_live_batches_to_live_mode_and_builds_the_others(data_dir: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        raw_batch(instance, "2024-03-05", live=False)  # e.g. a dump that ended as live mode started
        raw_batch(instance, "2024-03-09", live=True)
        with one_live_loop("redset live"):
            result = build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in result.run_requests] == ["2024-03-05"]
    assert [r.dates for r in owed_dates.pending(live=True)] == [{date(2024, 3, 9)}]  # still live mode's


def test_the_marts_sensor_names_live_mode_when_it_skips(data_dir: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        raw_batch(instance, "2024-03-09", live=True)
        with one_live_loop("redset live"):
            result = build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance))
    assert not result.run_requests
    assert "live mode is on" in result.skip_reason.skip_message


def test_keep_live_mode_running_requests_one_run_and_waits_for_a_running_loop(data_dir: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        request = keep_live_mode_running(dg.build_sensor_context(instance=instance))
        assert isinstance(request, dg.RunRequest)
        with one_live_loop("redset live"):
            skip = keep_live_mode_running(dg.build_sensor_context(instance=instance))
        assert isinstance(skip, dg.SkipReason) and "outside Dagster" in skip.skip_message
