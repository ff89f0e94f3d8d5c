"""Exactly once in effect: the raw dump SIGKILLed at three random moments, then left to finish.

The killed runs materialize raw_queries with Dagster in a subprocess of their own (a small
script: it starts faster than the CLI, which loads the whole code location); the final run is
`dagster asset materialize -m pipeline_assets.orchestration.definitions --select raw_queries`, checks included.
Each kill waits until the group has committed past a random point, then a random fraction of a
second more, so it lands anywhere in the next commit interval: mid-consume, mid-write, or
between the files' rename and the commit. SIGKILL goes to the run's whole process group.

The moments come from a seed, new on each run, printed and named in every assert message:
`REDSET_TEST_SEED=<seed> pytest tests/test_raw_kill.py` replays a failed run's kills.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Consumer
from raw_support import (
    assert_offsets_exactly_once,
    dead_rows,
    group_offsets,
    high_watermarks,
    raw_rows,
    use_private_dirs,
)

from pipeline_assets import schema, settings
from pipeline_assets.kafka import producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw import zone
from pipeline_assets.raw.dump import consume as kafka_consume
from pipeline_assets.source import generator

ROWS = 1_000_000
COMMIT_EVERY = 100_000
DAGSTER = str(Path(sys.executable).with_name("dagster"))
SEED = int(os.environ.get("REDSET_TEST_SEED") or random.randrange(1_000_000))
REPLAY = f"(replay: REDSET_TEST_SEED={SEED})"
DUMP_SCRIPT = """
import json, sys
import dagster as dg
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.kafka.resource import KafkaResource
result = dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, run_config=json.loads(sys.argv[1]))
sys.exit(0 if result.success else 1)
"""


@pytest.fixture(scope="module")
def backlog(kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pa.Table]:
    """1M generated rows in a new topic, produced once for the module by the project's producer."""
    topic = f"test.raw.kill.{uuid.uuid4().hex[:8]}"
    table = generator.generate(ROWS, seed=41)
    path = generator.write(table, tmp_path_factory.mktemp("kill") / "backlog.parquet")
    stats = producer.produce(path, topic, bootstrap=kafka_broker, progress=False)
    assert (stats.rows, stats.errors) == (ROWS, 0)
    return topic, table


def committed(bootstrap: str, topic: str, group: str) -> int:
    return sum(o.committed or 0 for o in group_offsets(bootstrap, topic, group))


@pytest.mark.kafka
@pytest.mark.slow(seconds=40)
def test_sigkill_three_times_then_finish_loses_and_doubles_nothing(
    kafka_broker: str, backlog: tuple[str, pa.Table], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, table = backlog
    group = f"test-raw-kill-{uuid.uuid4().hex[:8]}"
    for name, value in {
        "REDSET_DATA_DIR": str(tmp_path / "data"),
        "REDSET_TOPIC": topic,
        "REDSET_CONSUMER_GROUP": group,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster_home").mkdir()
    config = {"ops": {"raw_queries": {"config": {"commit_every": COMMIT_EVERY}}}}
    killed_run = [sys.executable, "-c", DUMP_SCRIPT, json.dumps(config)]
    final_run = [DAGSTER, "asset", "materialize", "-m", "pipeline_assets.orchestration.definitions", "--select", "raw_queries",
                 "--config-json", json.dumps(config)]  # fmt: skip
    rng = random.Random(SEED)
    print(f"REDSET_TEST_SEED={SEED}")

    for attempt in range(3):
        start = committed(kafka_broker, topic, group)
        target = min(start + rng.randint(1, 3) * COMMIT_EVERY, ROWS - 2 * COMMIT_EVERY)
        log = open(tmp_path / f"run-{attempt}.log", "wb")
        run = subprocess.Popen(killed_run, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while committed(kafka_broker, topic, group) < target:
            assert run.poll() is None, f"the dump ended before kill {attempt + 1}; see {log.name} {REPLAY}"
            assert time.monotonic() < deadline, f"no progress to {target}; see {log.name} {REPLAY}"
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 2.0))
        assert run.poll() is None, f"the dump ended before kill {attempt + 1}; see {log.name} {REPLAY}"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        log.close()
        print(f"kill {attempt + 1}: committed {committed(kafka_broker, topic, group):,} when killed")

    final = subprocess.run(final_run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    assert final.returncode == 0, final.stdout.decode()[-5000:] + REPLAY

    highs = high_watermarks(kafka_broker, topic)
    assert sum(highs.values()) == ROWS, REPLAY
    assert {o.partition: o.committed for o in group_offsets(kafka_broker, topic, group)} == highs, REPLAY

    # Deduplicated on (partition, offset), the raw zone holds every produced row exactly once.
    rows = raw_rows()
    assert dead_rows().num_rows == 0, REPLAY
    try:
        duplicates = assert_offsets_exactly_once(rows, highs)
    except AssertionError as exc:
        raise AssertionError(f"{exc} {REPLAY}") from exc
    print(f"raw zone: {rows.num_rows:,} rows written, {duplicates:,} of them re-deliveries")
    assert rows.num_rows == ROWS + duplicates, REPLAY
    first = rows.group_by(["kafka_partition", "kafka_offset"], use_threads=False).aggregate(
        [(c, "first") for c in schema.COLUMN_NAMES]
    )
    deduped = first.rename_columns([n.removesuffix("_first") for n in first.column_names])
    deduped = deduped.select(schema.COLUMN_NAMES).cast(schema.ARROW_SCHEMA)
    order = [("deployment", "ascending"), ("instance_id", "ascending"), ("query_id", "ascending")]
    assert deduped.sort_by(order).equals(table.cast(schema.ARROW_SCHEMA).sort_by(order)), REPLAY
    # A re-delivered offset carries the same row each time.
    keys = ["kafka_partition", "kafka_offset", "deployment", "instance_id", "query_id"]
    distinct_rows = rows.group_by(keys).aggregate([])
    assert distinct_rows.num_rows == ROWS, REPLAY

    # No half-written file is left behind, and none was ever visible under a final name.
    assert not list(settings.raw_dir().rglob(f"*{zone.TEMP_SUFFIX}")), REPLAY
    assert pc.all(pc.is_valid(rows.column("batch_id"))).as_py(), REPLAY


class CrashAtCommit(Consumer):
    """The real consumer, except that the process "dies" when it commits for the n-th time:
    the files of that checkpoint are already durable and visible, the offsets are not committed."""

    def __init__(self, config: dict, crash_at: int) -> None:
        super().__init__(config)
        self.commits_left = crash_at

    def commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.commits_left -= 1
        if self.commits_left == 0:
            raise SystemExit("simulated crash between rename and commit")
        return super().commit(*args, **kwargs)


@pytest.mark.kafka
def test_a_crash_between_rename_and_commit_redelivers_and_dedupes(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path, kafka_topic)
    path = generator.write(generator.generate(30_000, seed=43), tmp_path / "rows.parquet")
    assert producer.produce(path, kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0

    def options(batch: str) -> kafka_consume.DumpOptions:
        return kafka_consume.DumpOptions(
            topic=kafka_topic, group_id=group, raw_dir=settings.raw_dir(), dead_letter_dir=settings.dead_letter_dir(),
            batch_id=batch, max_messages=ROWS, chunk_size=5_000, commit_every=10_000,
        )  # fmt: skip

    config = KafkaResource().client_config(
        **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )
    crashing = CrashAtCommit(config, crash_at=2)
    with pytest.raises(SystemExit):
        kafka_consume.dump(crashing, options("crashed"), log=lambda _: None)
    crashing.close()
    committed_after_crash = committed(kafka_broker, kafka_topic, group)
    written_after_crash = raw_rows().num_rows
    assert committed_after_crash == 10_000  # the first checkpoint
    assert written_after_crash == 20_000  # the second one's files made it, its commit did not

    consumer = KafkaResource().consumer(group)
    stats = kafka_consume.dump(consumer, options("resumed"), log=lambda _: None)
    consumer.close()
    assert stats.messages == 20_000  # resumed from the last commit: 10,000 delivered again

    highs = high_watermarks(kafka_broker, kafka_topic)
    rows = raw_rows()
    duplicates = assert_offsets_exactly_once(rows, highs)
    # Re-delivered rows whose file got the same deterministic name replaced it; the others are
    # duplicates on (partition, offset), which every reader dedupes.
    assert rows.num_rows == 30_000 + duplicates
    assert duplicates <= 10_000
    assert {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == highs
