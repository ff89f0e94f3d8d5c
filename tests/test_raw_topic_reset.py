"""A topic reset (the topic deleted and re-created, or the broker's data wiped, while data/ stays):
the dump refuses to mix the new topic's reused offsets into the raw zone, until a new generation
is started on purpose; then both generations are kept apart by the topic id in the file names and
in staging's dedupe key. Raw files written before topic ids still read."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, TopicPartition
from dbt_support import dbt_paths, kafka_rows, materialize_dbt, query, ts, write_dead_letters, write_raw_file
from raw_support import group_offsets, produce_rows, raw_rows, recreate_topic, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka import topic_ids
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.asset import raw_queries

ID_IN_NAME = re.compile(r"-t([A-Za-z0-9_-]{22})-p[0-9]+-o[0-9]+-[0-9]+\.parquet$")


def materialize(**config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_queries],
        resources={"kafka": KafkaResource()},
        run_config={"ops": {"raw_queries": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def raw_files() -> dict[str, bytes]:
    return {str(p.relative_to(settings.raw_dir())): p.read_bytes() for p in settings.raw_dir().rglob("*.parquet")}


def failure(result: dg.ExecuteInProcessResult) -> str:
    [event] = result.get_step_failure_events()
    data = event.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.to_string()


@pytest.mark.kafka
def test_topic_reset_recreated_topic_stops_the_dump_until_a_new_generation(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    produce_rows(kafka_broker, kafka_topic, 300, 71, tmp_path)
    first_id = topic_ids.topic_id({"bootstrap.servers": kafka_broker}, kafka_topic)
    first = materialize()
    assert first.success, failure(first)
    before = raw_files()
    assert before and {ID_IN_NAME.search(name).group(1) for name in before} == {first_id}

    second_id = recreate_topic(kafka_broker, kafka_topic)
    assert second_id not in (None, first_id)
    produce_rows(kafka_broker, kafka_topic, 120, 72, tmp_path)

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
    produce_rows(kafka_broker, kafka_topic, 60, 73, tmp_path)
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


def test_topic_reset_both_generations_offsets_have_one_outcome_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offsets 0-10 in two generations (a new_generation after a reset): each generation's offsets
    have one outcome, a dead letter of one is no second outcome of the other's row, and the raw
    check sees two contiguous ranges. Within one generation, a re-sent query is still a duplicate
    and a row that is also a dead letter still fails."""
    from pipeline_assets.warehouse import checks
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models
    from pipeline_assets.warehouse.offset_outcomes import offset_outcomes, offsets_have_one_outcome

    paths = dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv("REDSET_TOPIC", "redset.queries")
    a, b = "redset.queries-tAAAAAAAAAAAAAAAAAAAAAA-p0", "redset.queries-tBBBBBBBBBBBBBBBBBBBBBB-p0"
    base = {"instance_id": 1, "cluster_size": 4.0, "user_id": 1, "database_id": 1, "query_type": "select",
            "compile_duration_ms": 1, "queue_duration_ms": 0, "execution_duration_ms": 10, "was_aborted": False,
            "was_cached": False, "mbytes_scanned": 1.0, "mbytes_spilled": 0.0, "deployment": "provisioned",
            "arrival_timestamp": ts("2024-03-01 10:00:00")}  # fmt: skip
    write_raw_file(paths.raw_dir, kafka_rows([dict(base, query_id=i) for i in range(10)], 0, "a1",
                                             ts("2024-03-02 00:00:00")), f"{a}-o0-9.parquet")  # fmt: skip
    write_dead_letters(paths.dead_dir, "redset.queries", [10], f"{a}-o10-10.parquet")
    # Generation B: offsets 0-10 again; offset 10 re-sends query 105 (a duplicate), offset 3 is written twice.
    second = kafka_rows([dict(base, query_id=100 + i) for i in range(10)] + [dict(base, query_id=105)], 0, "b1",
                        ts("2024-03-03 00:00:00"))  # fmt: skip
    write_raw_file(paths.raw_dir, second, f"{b}-o0-10.parquet")
    write_raw_file(paths.raw_dir, [dict(second[3], batch_id="b2")], f"{b}-o3-3.parquet")
    result = materialize_dbt([dbt_daily_models], partition="2024-03-01", checks=[offsets_have_one_outcome],
                             selection=["stg_query_deliveries", "stg_queries", "clean_queries", "quarantine_queries"])
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "offsets_have_one_outcome"]
    assert evaluation.passed, evaluation.description
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert (metadata["clean"], metadata["duplicate_delivery"], metadata["dead_letter"]) == (20, 1, 1)
    assert (metadata["no_outcome"], metadata["more_than_one_outcome"], metadata["redelivered_copies"]) == (0, 0, 1)
    assert query(paths.warehouse, "select kafka_topic_id, count(*) from clean_queries group by 1 order by 1") == [
        ("AAAAAAAAAAAAAAAAAAAAAA", 10), ("BBBBBBBBBBBBBBBBBBBBBB", 10)]  # fmt: skip
    contiguous = checks.raw_offsets_contiguous()
    assert contiguous.passed, contiguous.description
    assert [(c["topic_id"][0], c["last_offset"], c["redelivered"]) for c in contiguous.metadata["partitions"].data] == [
        ("A", 10, 0), ("B", 10, 1)]  # fmt: skip

    write_dead_letters(paths.dead_dir, "redset.queries", [4], f"{b}-o4-4.parquet")  # also B's clean row 4
    found = offset_outcomes(paths.raw_dir, paths.dead_dir, paths.warehouse)
    assert found.failures == {"clean + dead_letter": (1, [f"{b[:-3]}:0:4"])}
    contiguous = checks.raw_offsets_contiguous()
    assert not contiguous.passed
    assert contiguous.description == ("partition 0 of topic id BBBBBBBBBBBBBBBBBBBBBB: 0 offsets missing between 0 "
                                      "and 10, 1 both row and dead letter")  # fmt: skip
