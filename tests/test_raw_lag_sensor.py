"""kafka_lag_sensor against the real broker, evaluated with build_sensor_context."""

import json
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test
from raw_support import group_offsets, high_watermarks, use_private_dirs

from pipeline_assets.kafka import producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.orchestration.sensors import kafka_lag_sensor
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.source import generator


def produce(path: Path, rows: int, seed: int, topic: str, bootstrap: str) -> None:
    generator.write(generator.generate(rows, seed=seed), path)
    stats = producer.produce(path, topic, bootstrap=bootstrap, progress=False)
    assert (stats.rows, stats.errors) == (rows, 0)


@pytest.mark.kafka
def test_lag_sensor_requests_a_dump_only_when_there_is_lag(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> tuple[dg.RunRequest | dg.SkipReason, str | None]:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": KafkaResource()})
        return kafka_lag_sensor(context), context.cursor

    # An empty topic: nothing to do.
    result, cursor = tick(None)
    assert isinstance(result, dg.SkipReason)
    assert "lag 0" in result.skip_message
    assert json.loads(cursor) == {"watermarks": f"{kafka_topic}:0=0,1=0,2=0", "lag": 0}

    # 1,000 messages: a run whose key is the watermark tuple (from where the group stands).
    produce(tmp_path / "a.parquet", 1_000, 1, kafka_topic, kafka_broker)
    highs = high_watermarks(kafka_broker, kafka_topic)
    assert sum(highs.values()) == 1_000
    result, cursor_after_produce = tick(cursor)
    assert isinstance(result, dg.RunRequest)
    key = f"{kafka_topic}:" + ",".join(f"{p}=0-{h}" for p, h in highs.items())
    assert result.run_key == key
    watermarks = f"{kafka_topic}:" + ",".join(f"{p}={h}" for p, h in highs.items())
    assert json.loads(cursor_after_produce) == {
        "watermarks": watermarks,
        "lag": 1_000,
        "from": f"{kafka_topic}:0=0,1=0,2=0",
        "attempts": 1,
        "failures": 0,
        "run_key": key,
    }

    # The sensor only reads: the group still has no committed offset.
    assert [o.committed for o in group_offsets(kafka_broker, kafka_topic, group)] == [None, None, None]

    # A raw run in flight: skip, and say how big the lag is and which run is busy.
    busy = create_run_for_test(instance, job_name="dump_kafka_job", status=dg.DagsterRunStatus.STARTED)
    result, cursor_busy = tick(cursor_after_produce)
    assert isinstance(result, dg.SkipReason)
    assert "lag 1,000" in result.skip_message and busy.run_id in result.skip_message
    assert cursor_busy == cursor_after_produce

    # That run is gone and the offsets have not moved: the same range is requested again, under
    # a new key since Dagster would drop a repeated one; no run failed, so nothing is counted.
    instance.delete_run(busy.run_id)
    result, cursor_retry = tick(cursor_busy)
    assert isinstance(result, dg.RunRequest) and result.run_key == f"{key}#retry-1"
    assert {k: json.loads(cursor_retry)[k] for k in ("attempts", "failures")} == {"attempts": 2, "failures": 0}

    # After the dump: lag 0 again, and the cursor keeps the watermarks it saw.
    dump = dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=instance)
    assert dump.success
    result, cursor_after_dump = tick(cursor_retry)
    assert isinstance(result, dg.SkipReason) and "lag 0" in result.skip_message
    assert json.loads(cursor_after_dump) == {"watermarks": watermarks, "lag": 0}

    # More messages: a new key, starting from the committed offsets.
    produce(tmp_path / "b.parquet", 300, 2, kafka_topic, kafka_broker)
    new_highs = high_watermarks(kafka_broker, kafka_topic)
    result, cursor_more = tick(cursor_after_dump)
    assert isinstance(result, dg.RunRequest)
    assert result.run_key == f"{kafka_topic}:" + ",".join(f"{p}={highs[p]}-{h}" for p, h in new_highs.items())
    assert json.loads(cursor_more)["lag"] == 300


@pytest.mark.kafka
def test_lag_sensor_skips_a_topic_that_does_not_exist(kafka_broker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_TOPIC", "no.such.topic")
    with dg.instance_for_test() as instance:  # the sensor also checks the instance's runs for dead workers
        result = kafka_lag_sensor(dg.build_sensor_context(instance=instance, resources={"kafka": KafkaResource()}))
    assert isinstance(result, dg.SkipReason)
    assert "no.such.topic" in result.skip_message
