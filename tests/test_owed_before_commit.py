"""owed_before_commit: the arrival dates of every committed row are on disk before the commit.

A raw dump that fails after its first mid-run commit reports no materialization, yet its first
checkpoint is committed: the group will never deliver those rows again. The marts sensor learns
their dates from the dump's owed-dates records (raw/owed_dates.py), so it asks for their build
with no one asking, and after that build every offset in the raw zone has its outcome. The same
holds in live mode, whose records its next cycle takes into owed.json.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer
from dbt_support import dbt_paths, materialize_dbt
from raw_support import group_offsets, raw_rows

from pipeline_assets.kafka import producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.state import Owed
from pipeline_assets.orchestration.sensors import build_marts_on_new_raw_batches
from pipeline_assets.raw import owed_dates
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.source import generator
from pipeline_assets.warehouse.partitions import RANGE_END_TAG, RANGE_START_TAG

ROWS = 3_000
COMMIT_EVERY = 1_000


class FailsAtSecondCommit(Consumer):
    """The real consumer, except that its second commit raises: the run fails after one commit."""

    commits = 0

    def commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.commits += 1
        if self.commits == 2:
            raise RuntimeError("simulated failure after the first mid-run commit")
        return super().commit(*args, **kwargs)


class FailingKafka(KafkaResource):
    def consumer(self, group_id: str, **overrides: object) -> Consumer:
        return FailsAtSecondCommit(self.consumer_config(group_id, **overrides))


def spans(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (r.partition_key, r.partition_key) if r.partition_key else (r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG])
        for r in result.run_requests
    ]


@pytest.mark.kafka
def test_owed_before_commit_a_dump_failing_after_its_first_commit_has_its_dates_built(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_assets.warehouse.offset_outcomes import offset_outcomes

    paths = dbt_paths(monkeypatch, tmp_path)
    group = f"test-owed-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("REDSET_TOPIC", kafka_topic)
    monkeypatch.setenv("REDSET_CONSUMER_GROUP", group)
    rows = generator.generate(ROWS, seed=23, deployment="both", start=date(2024, 3, 1), days=3)
    generator.write(rows, tmp_path / "rows.parquet")
    assert producer.produce(tmp_path / "rows.parquet", kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0

    config = {"ops": {"raw_queries": {"config": {"commit_every": COMMIT_EVERY, "chunk_size": 500}}}}
    with dg.instance_for_test() as instance:
        dump = dg.materialize(
            [raw_queries], resources={"kafka": FailingKafka()}, instance=instance, run_config=config, raise_on_error=False
        )
        assert not dump.success
        assert instance.get_latest_materialization_event(dg.AssetKey("raw_queries")) is None  # it reported nothing
        committed = sum(o.committed or 0 for o in group_offsets(kafka_broker, kafka_topic, group))
        assert committed == COMMIT_EVERY  # the first checkpoint is committed: never delivered again
        on_disk = {date.fromisoformat(p.parent.name.split("=")[1]) for p in paths.raw_dir.glob("arrival_date=*/*.parquet")}
        assert on_disk and {d for r in owed_dates.pending() for d in r.dates} == on_disk

        # No one asks: the sensor's tick requests the build of every date on disk ...
        tick = build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance))
        assert spans(tick) == [(min(on_disk).isoformat(), max(on_disk).isoformat())]
        [window] = spans(tick)
        from pipeline_assets.warehouse.dbt_assets import dbt_daily_models

        assert materialize_dbt([dbt_daily_models], partition_range=window, instance=instance).success
        # ... and the next tick, with the cursor that holds them, settles the records.
        build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance, cursor=tick.cursor))
        assert owed_dates.pending() == []

    # Built: every offset of the raw zone, the committed ones among them, has its outcome.
    found = offset_outcomes(paths.raw_dir, paths.dead_dir, paths.warehouse)
    assert found.passed, found.describe()
    assert found.not_yet_built == 0
    assert sum(found.counts.values()) == raw_rows(["kafka_offset"]).num_rows >= committed


@pytest.mark.kafka
def test_owed_before_commit_live_mode_takes_the_dates_of_a_cycle_that_died_after_its_commit(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline_assets.live.consume import LiveConsumer
    from pipeline_assets.live.cycle import take_recorded_dates

    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDSET_TOPIC", kafka_topic)
    monkeypatch.setenv("REDSET_CONSUMER_GROUP", f"test-owed-live-{uuid.uuid4().hex[:8]}")
    rows = generator.generate(500, seed=29, start=date(2024, 3, 4), days=2)
    generator.write(rows, tmp_path / "rows.parquet")
    assert producer.produce(tmp_path / "rows.parquet", kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0

    # A cycle's take, committed, and then the process dies before the cycle saves owed.json.
    _, stats = LiveConsumer(KafkaResource()).take(batch_id=f"{owed_dates.LIVE_PREFIX}dead-1")
    assert stats.commits == 1 and stats.summary.arrival_dates
    assert Owed.load().every_cycle == set()  # what the old code had on disk at this point

    # The next cycle takes the record into owed.json, before any model runs.
    take_recorded_dates(Owed.load())
    assert Owed.load().every_cycle == Owed.load().insights == stats.summary.arrival_dates
    assert owed_dates.pending() == []
