"""Live mode after a topic reset: it stops as the batch dump does, until it is started with its own
new_generation switch (`redset live --new-generation`, live_mode_job's run config), which accepts
the re-created topic once: a later reset in the same session stops it again."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from raw_support import group_offsets, produce_rows, raw_rows, recreate_topic, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.cli.main import build_parser
from pipeline_assets.live.consume import LiveConsumer
from pipeline_assets.live.job import live_mode_job
from pipeline_assets.raw.dump.generation import TopicReset, recorded_id


def test_topic_reset_live_switch_is_a_cli_flag_and_run_config() -> None:
    assert build_parser().parse_args(["live", "--new-generation"]).new_generation is True
    assert build_parser().parse_args(["live"]).new_generation is False
    run_config = {"ops": {"run_live_mode": {"config": {"new_generation": True}}}}
    assert dg.validate_run_config(live_mode_job, run_config)["ops"]["run_live_mode"]["config"] == {"new_generation": True}


@pytest.mark.kafka
def test_topic_reset_live_mode_stops_until_its_new_generation_switch(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    produce_rows(kafka_broker, kafka_topic, 50, 81, tmp_path)
    _, first = LiveConsumer().take(batch_id="live-a")
    assert first.messages == 50
    first_id = recorded_id(settings.raw_dir(), kafka_topic)

    recreate_topic(kafka_broker, kafka_topic)
    produce_rows(kafka_broker, kafka_topic, 20, 82, tmp_path)
    with pytest.raises(TopicReset, match="redset live --new-generation"):
        LiveConsumer().take(batch_id="live-b")
    assert raw_rows().num_rows == 50  # nothing moved

    switched = LiveConsumer(new_generation=True)
    _, taken = switched.take(batch_id="live-c")
    assert taken.messages == 20 and raw_rows().num_rows == 70
    assert recorded_id(settings.raw_dir(), kafka_topic) not in (None, first_id)
    assert sum(p.committed for p in group_offsets(kafka_broker, kafka_topic, group)) == 20
    assert switched.new_generation is False  # used once

    recreate_topic(kafka_broker, kafka_topic)  # a second reset in the same session stops it again
    produce_rows(kafka_broker, kafka_topic, 5, 83, tmp_path)
    with pytest.raises(TopicReset):
        switched.take(batch_id="live-d")
    assert raw_rows().num_rows == 70
