"""A crash does not loop: a processing bug on one message, against the real broker.

- isolation mode dead-letters exactly that message (`dump_failed`), lands the rest, commits to the end;
- kafka_lag_sensor counts failed runs of the same offsets, backs off, then asks for isolation;
- end to end: failed runs, then an isolation run, then the whole topic is in.
"""

import dataclasses
import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Producer
from dagster._core.test_utils import create_run_for_test
from raw_support import (
    assert_offsets_exactly_once,
    dead_rows,
    group_offsets,
    high_watermarks,
    raw_rows,
    use_private_dirs,
)

from pipeline_assets import settings
from pipeline_assets.kafka import messages
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.orchestration.sensors import kafka_lag_sensor
from pipeline_assets.raw.dump import isolation, parse
from pipeline_assets.raw.dump import retries as dump_retries
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.raw.dump.options import DumpOptions
from pipeline_assets.source import generator
from pipeline_assets.warehouse.checks import raw_offsets_contiguous, raw_rows_match_offsets

MESSAGES = 5_000
POISON_AT = 3_210  # the message (in production order) that trips the injected bug
BUG = "injected parser bug: cannot handle this one"


def produce(bootstrap: str, topic: str, rows: int = MESSAGES, seed: int = 7) -> list[bytes]:
    """Good messages, encoded by the project's encoder; returns their values."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    keys, values = messages.encode(generator.generate(rows, seed=seed).combine_chunks().to_batches()[0])
    for key, value in zip(keys.to_pylist(), values.to_pylist(), strict=True):
        producer.produce(topic, value.encode(), key.encode())
        producer.poll(0)
    assert producer.flush(60) == 0
    return [v.encode() for v in values.to_pylist()]


def inject_bug(monkeypatch: pytest.MonkeyPatch, poison: bytes) -> None:
    """parse_values raises on any batch that holds `poison` (a bug, not a validation rule)."""
    real = parse.parse_values

    def buggy(values: list[bytes | None]) -> parse.Parsed:
        if poison in values:
            raise ValueError(BUG)
        return real(values)

    monkeypatch.setattr(parse, "parse_values", buggy)


def materialize(instance: dg.DagsterInstance, run_config: dict | None = None, tags: dict | None = None):
    return dg.materialize(
        [raw_queries, raw_offsets_contiguous, raw_rows_match_offsets],
        resources={"kafka": KafkaResource()},
        run_config=run_config or {},
        tags=tags,
        instance=instance,
        raise_on_error=False,
    )


def alert_lines() -> list[str]:
    path = settings.alert_log_path()
    return path.read_text().splitlines() if path.exists() else []


def assert_only_the_poison_is_dead(bootstrap: str, topic: str, poison: bytes) -> None:
    dead = dead_rows().to_pylist()
    assert len(dead) == 1, dead
    [letter] = dead
    assert letter["raw_value"] == poison
    assert letter["reason"] == f"dump_failed: ValueError: {BUG}"
    assert letter["field"] is None
    rows = raw_rows(["kafka_partition", "kafka_offset"])
    assert rows.num_rows == MESSAGES - 1
    where = pc.and_(
        pc.equal(rows["kafka_partition"], letter["kafka_partition"]),
        pc.equal(rows["kafka_offset"], letter["kafka_offset"]),
    )
    assert not pc.any(where).as_py(), "the dead message is also a row"
    highs = high_watermarks(bootstrap, topic)
    everything = pa.concat_tables([rows, dead_rows(["kafka_partition", "kafka_offset"])])
    assert assert_offsets_exactly_once(everything, highs) == 0
    assert {o.partition: o.committed for o in group_offsets(bootstrap, topic, settings.consumer_group())} == highs
    alerts = [line for line in alert_lines() if " DUMP FAILED " in line]
    assert len(alerts) == 1, alert_lines()
    about = f" topic={topic} partition={letter['kafka_partition']} offset={letter['kafka_offset']} "
    assert about in alerts[0] and BUG in alerts[0]


def assert_checks_passed(result: dg.ExecuteInProcessResult) -> None:
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"raw_offsets_contiguous", "raw_rows_match_offsets"}
    assert all(e.passed for e in checks.values()), {n: e.description for n, e in checks.items()}


@pytest.mark.kafka
def test_isolation_mode_dead_letters_only_the_message_that_crashes_processing(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    poison = produce(kafka_broker, kafka_topic)[POISON_AT]
    inject_bug(monkeypatch, poison)

    result = materialize(dg.DagsterInstance.ephemeral(), dump_retries.ISOLATION_CONFIG)

    assert result.success
    assert_only_the_poison_is_dead(kafka_broker, kafka_topic, poison)
    [materialization] = result.asset_materializations_for_node("raw_queries")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert (meta["messages_consumed"], meta["rows_written"], meta["dead_letters_by_kind"]) == (
        MESSAGES,
        MESSAGES - 1,
        {"dump_failed": 1},
    )
    # A commit after every chunk of isolation.CHUNK_SIZE messages.
    assert (meta["isolate_failures"], meta["commits"]) == (True, -(-MESSAGES // isolation.CHUNK_SIZE))
    assert_checks_passed(result)


@pytest.mark.kafka
def test_a_failing_dump_is_retried_a_bounded_number_of_times_with_backoff_then_isolated(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("REDSET_SENSOR_INTERVAL", "10")
    monkeypatch.setenv("REDSET_DUMP_MAX_ATTEMPTS", "3")
    produce(kafka_broker, kafka_topic, rows=300)

    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> tuple[dg.RunRequest | dg.SkipReason, dict]:
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": KafkaResource()})
            return kafka_lag_sensor(context), json.loads(context.cursor)

        def fail(request: dg.RunRequest) -> None:
            """The requested run ran and failed."""
            create_run_for_test(
                instance,
                job_name="dump_kafka_job",
                status=dg.DagsterRunStatus.FAILURE,
                tags={**request.tags, dump_retries.RUN_KEY_TAG: request.run_key},
            )

        def time_passes(state: dict) -> str:
            return json.dumps({**state, "retry_after": 0})

        request, state = tick(None)
        assert isinstance(request, dg.RunRequest) and request.run_config == {}
        first_key = request.run_key
        for failures in (1, 2, 3):
            fail(request)
            skip, state = tick(json.dumps(state))
            # Backing off: 10 s after the first failure, 20 after the second, 40 after the third.
            assert isinstance(skip, dg.SkipReason), skip
            assert f"failed {failures} time(s)" in skip.skip_message
            backoff = state["retry_after"] - state["failed_at"]
            assert (state["failures"], backoff) == (failures, 10 * 2 ** (failures - 1))
            # A second tick in the back-off neither requests nor counts the same failure again.
            skip, state = tick(json.dumps(state))
            assert isinstance(skip, dg.SkipReason) and state["failures"] == failures
            if failures == 2:
                produce(kafka_broker, kafka_topic, rows=50, seed=8)  # the watermarks move; the group does not
            request, state = tick(time_passes(state))
            assert isinstance(request, dg.RunRequest)
            assert request.run_key.endswith(f"#retry-{failures}") and request.run_key != first_key
            isolated = failures == 3
            assert (request.tags.get(dump_retries.ISOLATE_TAG) == "true") is isolated
            assert request.run_config == (dump_retries.ISOLATION_CONFIG if isolated else {})

        # Even isolation failed: the failure is not one message's. Alert, keep backing off, and
        # keep asking in isolation mode.
        fail(request)
        skip, state = tick(json.dumps(state))
        assert isinstance(skip, dg.SkipReason) and "in isolation mode" in skip.skip_message
        assert (state["failures"], state["retry_after"] - state["failed_at"]) == (4, 80)
        [stuck] = [line for line in alert_lines() if " DUMP STUCK " in line]
        assert f"topic={kafka_topic} offsets={kafka_topic}:0=0,1=0,2=0 " in stuck
        request, state = tick(time_passes(state))
        assert isinstance(request, dg.RunRequest) and request.tags[dump_retries.ISOLATE_TAG] == "true"


@pytest.mark.kafka
def test_a_processing_bug_costs_bounded_failed_runs_then_the_rest_of_the_topic_lands(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("REDSET_DUMP_MAX_ATTEMPTS", "2")
    poison = produce(kafka_broker, kafka_topic)[POISON_AT]
    inject_bug(monkeypatch, poison)

    with dg.instance_for_test() as instance:
        cursor = None
        runs: list[tuple[bool, bool]] = []  # (isolation mode, succeeded), per run started
        for _ in range(10):
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"kafka": KafkaResource()})
            request = kafka_lag_sensor(context)
            cursor = context.cursor
            if isinstance(request, dg.SkipReason):
                if "lag 0" in request.skip_message:
                    break
                cursor = json.dumps({**json.loads(cursor), "retry_after": 0})  # the back-off passes
                continue
            # What the sensor daemon would launch: the request's config and tags, its run key.
            tags = {**request.tags, dump_retries.RUN_KEY_TAG: request.run_key}
            result = materialize(instance, request.run_config, tags)
            runs.append((dump_retries.ISOLATE_TAG in request.tags, result.success))
            if result.success:
                last = result

    assert runs == [(False, False), (False, False), (True, True)]
    assert_only_the_poison_is_dead(kafka_broker, kafka_topic, poison)
    assert_checks_passed(last)


def test_an_isolation_run_takes_small_committed_chunks_up_to_one_commit_interval() -> None:
    normal = DumpOptions(
        topic="t", group_id="g", raw_dir=Path("r"), dead_letter_dir=Path("d"), batch_id="b",
        max_messages=1_000_000, chunk_size=25_000, commit_every=100_000,
    )  # fmt: skip
    isolating = isolation.isolating(normal)
    assert (isolating.isolate_failures, isolating.chunk_size, isolating.commit_every, isolating.max_messages) == (
        True,
        isolation.CHUNK_SIZE,
        isolation.CHUNK_SIZE,
        125_000,  # the failed runs' failing chunk lies within one commit interval (and chunk) of the group
    )
    assert isolation.isolating(dataclasses.replace(normal, max_messages=7)).max_messages == 7
