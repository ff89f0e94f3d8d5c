"""REDSET_RAW_CONSUMERS=N: the raw dump in N consumer processes of one group (dump/parallel.py)."""

import dataclasses
import os
import signal
from pathlib import Path

import dagster as dg
import pytest
from raw_support import assert_offsets_exactly_once, group_offsets, high_watermarks, raw_rows, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka import producer
from pipeline_assets.kafka.offsets import PartitionOffsets
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump import parallel as parallel_dump
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.raw.dump.consume import CONSUMER_TUNING
from pipeline_assets.raw.dump.options import DumpOptions
from pipeline_assets.source import generator

BROKEN_PARTITION = 1


def produce(tmp_path: Path, topic: str, bootstrap: str, rows: int) -> dict[int, int]:
    source = generator.write(generator.generate(rows, seed=83), tmp_path / "rows.parquet")
    assert producer.produce(source, topic, bootstrap=bootstrap, progress=False).errors == 0
    highs = high_watermarks(bootstrap, topic)
    assert all(highs.values()), highs  # every partition has messages, so each consumer has work
    return highs


@pytest.mark.kafka
def test_three_consumers_each_read_their_own_partitions_exactly_once(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("REDSET_RAW_CONSUMERS", "3")
    highs = produce(tmp_path, kafka_topic, kafka_broker, 900)
    result = dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, raise_on_error=False)
    assert result.success
    [materialization] = result.asset_materializations_for_node("raw_queries")
    meta = {k: v.value for k, v in materialization.metadata.items()}

    consumers = meta["consumers"]
    pids = {c["pid"] for c in consumers}
    assert len(pids) == 3 and os.getpid() not in pids
    assert sorted(p for c in consumers for p in c["partitions"]) == [0, 1, 2]
    for c in consumers:
        [partition] = c["partitions"]
        assert c["messages"] == highs[partition]
    assert (meta["messages_consumed"], meta["rows_written"], meta["lag_after"]) == (900, 900, 0)
    assert meta["offsets_consumed"] == {str(p): {"from": 0, "to": h - 1} for p, h in highs.items()}
    assert meta["consumers_idle"] == 0
    assert assert_offsets_exactly_once(raw_rows(), highs) == 0
    assert {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == highs


def die_on_one_partition(index: int, config: dict, options: DumpOptions, results: object) -> None:
    """A consumer process that fails on BROKEN_PARTITION: killed outright, or (mode "error" in
    the environment) unable to write its raw zone; the others run as usual."""
    if BROKEN_PARTITION in (options.partitions or ()):
        if os.environ.get("TEST_BREAK_MODE") == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        blocker = options.raw_dir.parent / "not-a-folder"
        blocker.write_text("")
        options = dataclasses.replace(options, raw_dir=blocker / "raw")
    parallel_dump.consume_share(index, config, options, results)


@pytest.mark.kafka
@pytest.mark.parametrize("mode", ["error", "kill"])
def test_a_failed_consumer_fails_the_run_by_name_and_its_messages_are_read_next_time(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("TEST_BREAK_MODE", mode)
    highs = produce(tmp_path, kafka_topic, kafka_broker, 600)
    options = DumpOptions(kafka_topic, group, settings.raw_dir(), settings.dead_letter_dir(), "b1", 10_000)
    config = KafkaResource().consumer_config(group, **CONSUMER_TUNING)
    lines: list[str] = []

    with pytest.raises(parallel_dump.ConsumerFailed) as failed:
        parallel_dump.dump_in_parallel(config, options, 3, log=lines.append, target=die_on_one_partition)
    message = str(failed.value)
    assert f"partitions [{BROKEN_PARTITION}]) failed" in message
    assert ("exit code -9" if mode == "kill" else "not-a-folder") in message
    committed = {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)}
    assert committed == {**highs, BROKEN_PARTITION: None}  # the others' work is durable and committed
    assert failed.value.stats.messages == sum(highs.values()) - highs[BROKEN_PARTITION]

    stats, _ = parallel_dump.dump_in_parallel(config, dataclasses.replace(options, batch_id="b2"), 3, log=lines.append)
    assert stats.messages == highs[BROKEN_PARTITION]
    assert assert_offsets_exactly_once(raw_rows(), highs) == 0
    assert {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == highs


def test_partitions_are_split_by_lag_and_extra_consumers_get_none() -> None:
    plan = [PartitionOffsets(p, 0, high, None) for p, high in enumerate([100, 300, 0, 200])]
    assert parallel_dump.split_partitions(plan, 2) == [(1,), (0, 3)]
    assert parallel_dump.split_partitions(plan, 5) == [(1,), (3,), (0,), (), ()]


def test_max_messages_is_shared_by_lag_and_sums_to_the_limit() -> None:
    options = DumpOptions("t", "g", Path("raw"), Path("dead"), "b", max_messages=400)
    reports = [parallel_dump.ConsumerReport(i, (i,)) for i in range(3)]
    shares = parallel_dump._shares(options, reports, {0: 300, 1: 600, 2: 300})
    assert [shares[i].max_messages for i in range(3)] == [100, 200, 100]
    assert [shares[i].partitions for i in range(3)] == [(0,), (1,), (2,)]
    uneven = parallel_dump._shares(options, reports, {0: 100, 1: 500, 2: 1})
    assert sum(s.max_messages for s in uneven.values()) == 400 and uneven[2].max_messages <= 1
    everything = parallel_dump._shares(options, reports, {0: 10, 1: 20, 2: 30})
    assert [everything[i].max_messages for i in range(3)] == [10, 20, 30]


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_consumer_count_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("REDSET_RAW_CONSUMERS", value)
    with pytest.raises(ValueError, match="REDSET_RAW_CONSUMERS"):
        settings.raw_consumers()
