"""raw_queries through Dagster: a capped run, an empty topic, a missing topic."""

from pathlib import Path

import dagster as dg
import pytest
from raw_support import assert_offsets_exactly_once, group_offsets, high_watermarks, raw_rows, use_private_dirs

from pipeline_assets.kafka import producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.source import generator


def materialize(instance: dg.DagsterInstance, **config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_queries],
        resources={"kafka": KafkaResource()},
        run_config={"ops": {"raw_queries": {"config": config}}},
        instance=instance,
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    [materialization] = result.asset_materializations_for_node("raw_queries")
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.mark.kafka
def test_a_run_takes_at_most_max_messages_and_the_next_run_the_rest(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zone_storage: str | None
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    source = generator.write(generator.generate(1_000, seed=61), tmp_path / "rows.parquet")
    assert producer.produce(source, kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0
    instance = dg.DagsterInstance.ephemeral()

    first = materialize(instance, max_messages=400)
    assert first.success
    meta = metadata(first)
    assert (meta["messages_consumed"], meta["rows_written"], meta["lag_after"]) == (400, 400, 600)
    assert sum(o.committed or 0 for o in group_offsets(kafka_broker, kafka_topic, group)) == 400

    second = materialize(instance)
    assert second.success
    meta = metadata(second)
    assert (meta["messages_consumed"], meta["lag_after"]) == (600, 0)
    assert assert_offsets_exactly_once(raw_rows(), high_watermarks(kafka_broker, kafka_topic)) == 0
    if zone_storage:  # on S3, every file was uploaded and none is left in the local staging folder
        assert meta["raw_dir"] == f"{zone_storage}/raw"
        assert not list((tmp_path / "data" / "staging").rglob("*.parquet"))


@pytest.mark.kafka
def test_an_empty_topic_materializes_nothing(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path, kafka_topic)
    result = materialize(dg.DagsterInstance.ephemeral())
    assert result.success
    meta = metadata(result)
    assert (meta["rows_written"], meta["messages_consumed"], meta["lag_after"], meta["arrival_dates"]) == (0, 0, 0, [])


@pytest.mark.kafka
def test_a_missing_topic_fails_with_its_name(
    kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path, "no.such.topic")
    result = materialize(dg.DagsterInstance.ephemeral())
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "no.such.topic" in failure.step_failure_data.user_failure_data.description
