"""A topic reset (the topic deleted and re-created, or the broker's data wiped, while data/ stays):
the dump refuses to mix the new topic's reused offsets into the raw zone, until a new generation
is started on purpose; then both generations are kept apart by the topic id in the file names and
in staging's dedupe key. Raw files written before topic ids still read."""

from __future__ import annotations

import re
import time
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from dbt_support import dbt_paths, kafka_rows, query, ts, write_raw_file
from raw_support import group_offsets, raw_rows, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka import producer, topic_ids
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.source import generator

ID_IN_NAME = re.compile(r"-t([A-Za-z0-9_-]{22})-p[0-9]+-o[0-9]+-[0-9]+\.parquet$")


def materialize(**config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_queries],
        resources={"kafka": KafkaResource()},
        run_config={"ops": {"raw_queries": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def produce(bootstrap: str, topic: str, rows: int, seed: int, tmp_path: Path) -> None:
    source = generator.write(generator.generate(rows, seed=seed), tmp_path / f"rows-{seed}.parquet")
    assert producer.produce(source, topic, bootstrap=bootstrap, progress=False).errors == 0


def raw_files() -> dict[str, bytes]:
    return {str(p.relative_to(settings.raw_dir())): p.read_bytes() for p in settings.raw_dir().rglob("*.parquet")}


def failure(result: dg.ExecuteInProcessResult) -> str:
    [event] = result.get_step_failure_events()
    data = event.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.to_string()


def recreate(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(timeout=30)
    deadline = time.monotonic() + 60
    while True:  # the broker may still be deleting it
        try:
            admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.kafka
def test_topic_reset_recreated_topic_stops_the_dump_until_a_new_generation(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    produce(kafka_broker, kafka_topic, 300, 71, tmp_path)
    first_id = topic_ids.topic_id({"bootstrap.servers": kafka_broker}, kafka_topic)
    first = materialize()
    assert first.success, failure(first)
    before = raw_files()
    assert before and {ID_IN_NAME.search(name).group(1) for name in before} == {first_id}

    recreate(kafka_broker, kafka_topic)
    deadline, second_id = time.monotonic() + 30, None
    while second_id is None and time.monotonic() < deadline:  # the new topic's metadata spreads
        second_id = topic_ids.topic_id({"bootstrap.servers": kafka_broker}, kafka_topic)
        time.sleep(0.2)
    assert second_id not in (None, first_id)
    produce(kafka_broker, kafka_topic, 120, 72, tmp_path)

    refused = materialize()
    assert not refused.success
    message = failure(refused)
    assert "\n" not in message
    assert message.startswith(f"topic reset: topic {kafka_topic} has id {second_id}, but the raw zone was filled from id {first_id}")
    assert "new_generation: true" in message
    [alert] = [line for line in settings.alert_log_path().read_text().splitlines() if "TOPIC RESET" in line]
    assert f"topic_id={second_id}" in alert and f"recorded_topic_id={first_id}" in alert
    assert raw_files() == before  # nothing moved
    assert materialize().success is False  # and again: it does not go away by itself

    started = materialize(new_generation=True)
    assert started.success, failure(started)
    [done] = started.asset_materializations_for_node("raw_queries")
    assert done.metadata["messages_consumed"].value == 120
    assert done.metadata["topic_id"].value == second_id
    after = raw_files()
    assert {k: v for k, v in after.items() if k in before} == before  # the first generation's files stay
    assert {ID_IN_NAME.search(name).group(1) for name in set(after) - set(before)} == {second_id}
    assert raw_rows().num_rows == 420
    assert sum(p.committed for p in group_offsets(kafka_broker, kafka_topic, settings.consumer_group())) == 120
    assert materialize().success  # the new generation is the raw zone's topic now


@pytest.mark.kafka
def test_topic_reset_committed_offset_above_the_high_watermark_stops_the_dump(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    produce(kafka_broker, kafka_topic, 60, 73, tmp_path)
    # What a wiped broker leaves when the group's offsets survive elsewhere: ahead of the log.
    consumer = Consumer({"bootstrap.servers": kafka_broker, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(kafka_topic, 1, 5_000)], asynchronous=False)
    consumer.close()

    refused = materialize()
    assert not refused.success
    assert "the committed offset is above the high watermark on partition 1 (5000 >" in failure(refused)
    assert raw_files() == {}

    assert materialize(new_generation=True).success
    assert raw_rows().num_rows == 60
    assert all(p.committed == p.high for p in group_offsets(kafka_broker, kafka_topic, group))


def test_topic_reset_generations_and_files_without_a_topic_id_are_staged_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offsets 0-9 three times: a file from before topic ids, then two generations. None of them is a
    duplicate of another; a re-delivery within one still is."""
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models, dbt_resource

    paths = dbt_paths(monkeypatch, tmp_path)
    base = {"instance_id": 1, "cluster_size": 4.0, "user_id": 1, "database_id": 1, "query_type": "select",
            "compile_duration_ms": 1, "queue_duration_ms": 0, "execution_duration_ms": 10, "was_aborted": False,
            "was_cached": False, "mbytes_scanned": 1.0, "mbytes_spilled": 0.0}  # fmt: skip
    for n, name in enumerate(["redset.queries-p0-o0-9.parquet", "redset.queries-tAAAAAAAAAAAAAAAAAAAAAA-p0-o0-9.parquet",
                              "redset.queries-tBBBBBBBBBBBBBBBBBBBBBB-p0-o0-9.parquet"]):  # fmt: skip
        rows = [dict(base, deployment="provisioned", query_id=100 * n + i, arrival_timestamp=ts("2024-03-01 10:00:00"))
                for i in range(10)]  # fmt: skip
        write_raw_file(paths.raw_dir, kafka_rows(rows, 0, f"b{n}", ts("2024-03-02 00:00:00")), name)
    again = [dict(base, deployment="provisioned", query_id=205, arrival_timestamp=ts("2024-03-01 10:00:00"))]
    write_raw_file(paths.raw_dir, kafka_rows(again, 5, "b9", ts("2024-03-02 01:00:00")),
                   "redset.queries-tBBBBBBBBBBBBBBBBBBBBBB-p0-o5-5.parquet")  # fmt: skip
    result = dg.materialize([dbt_daily_models], selection=["stg_query_deliveries", "stg_queries"],
                            partition_key="2024-03-01", resources={"dbt": dbt_resource})  # fmt: skip
    assert result.success
    staged = query(paths.warehouse, "select query_id from stg_queries order by query_id")
    assert [q for (q,) in staged] == [*range(0, 10), *range(100, 110), *range(200, 210)]
