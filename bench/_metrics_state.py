"""The stored state a scrape reads, as a pipeline of `rows` rows leaves it (bench/metrics.py --part scrape).

The collector reads Kafka's offsets (not the messages), the dead-letter zone's four small columns,
the snapshot's manifest and Dagster's run records, so the state is built at that size directly:
`rows` messages of a few bytes on a 3-partition topic, the group's committed offsets 1 % short of
the end, rows/1000 dead letters in DEAD_LETTER_FILES files, a manifest, and RUNS runs of the
pipeline's jobs (a tenth failed) in a private instance.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

PARTITIONS = 3
DEAD_LETTER_SHARE = 0.001
DEAD_LETTER_FILES = 20
RUNS = 2_000


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=60)


def fill_topic(bootstrap: str, topic: str, messages: int) -> None:
    """`messages` tiny messages, round-robin over the partitions (a full local queue: poll, retry)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 100_000,
                         "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    for i in tqdm(range(messages), desc=f"messages to {topic}", unit="msg", unit_scale=True, mininterval=5, disable=None):
        while True:
            try:
                producer.produce(topic, value=b"{}", partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise RuntimeError(f"{topic}: messages left undelivered after 120 s")


def commit_short_of_end(bootstrap: str, topic: str, group: str, share: float = 0.01) -> int:
    """Commit `group`'s offsets `share` short of each partition's end; returns the lag left."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        offsets, lag = [], 0
        for p in range(PARTITIONS):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            behind = int(high * share)
            offsets.append(TopicPartition(topic, p, high - behind))
            lag += behind
        consumer.commit(offsets=offsets, asynchronous=False)
        return lag
    finally:
        consumer.close()


def write_dead_letters(directory: Path, topic: str, letters: int) -> None:
    from pipeline_assets.raw import dead_letters
    from pipeline_assets.raw.dead_letters import DEAD_LETTER_SCHEMA
    from pipeline_assets.raw.message_rules import KINDS

    directory.mkdir(parents=True, exist_ok=True)
    kinds = sorted(KINDS)
    now = datetime.now(timezone.utc)
    per_file = -(-letters // DEAD_LETTER_FILES)
    for f in range(DEAD_LETTER_FILES):
        offsets = range(f * per_file, min(letters, (f + 1) * per_file))
        n = len(offsets)
        kafka = pa.table({
            "kafka_topic": pa.array([topic] * n, pa.string()),
            "kafka_partition": pa.array([o % PARTITIONS for o in offsets], pa.int32()),
            "kafka_offset": pa.array(list(offsets), pa.int64()),
            "kafka_timestamp": pa.array([now] * n, DEAD_LETTER_SCHEMA.field("kafka_timestamp").type),
            "kafka_key": pa.nulls(n, pa.string()),
        })  # fmt: skip
        table = dead_letters.dead_letter_table(
            raw_values=[b"{not json"] * n, reasons=[f"{kinds[o % len(kinds)]}: bench" for o in offsets],
            fields=[None] * n, batch_id=uuid.uuid4().hex, ingested_at=now, kafka=kafka,
        )  # fmt: skip
        dead_letters.write(table, directory, f"dead-letters-{f:03d}.parquet")


def write_manifest(serving_dir: Path) -> None:
    from pipeline_assets.serving import quarantine
    from pipeline_assets.serving.snapshot import MANIFEST, write_json_atomically

    serving_dir.mkdir(parents=True, exist_ok=True)
    payload = {"published_at": datetime.now(timezone.utc).isoformat(),
               "quarantine_by_reason": {r: 100 for r in quarantine.reasons()}}  # fmt: skip
    write_json_atomically(payload, serving_dir / MANIFEST)


def add_runs(instance, runs: int) -> None:
    """`runs` run records of the pipeline's jobs, every tenth failed."""
    import dagster as dg

    from pipeline_assets.monitoring.run_counts import JOBS

    for i in range(runs):
        status = dg.DagsterRunStatus.FAILURE if i % 10 == 0 else dg.DagsterRunStatus.SUCCESS
        instance.add_run(dg.DagsterRun(job_name=JOBS[i % len(JOBS)], run_id=str(uuid.uuid4()), status=status))


def build(root: Path, bootstrap: str, topic: str, group: str, rows: int, instance) -> dict[str, int]:
    """The state of a pipeline at `rows` rows under `root` (0 rows: an empty topic, nothing else)."""
    create_topic(bootstrap, topic)
    if not rows:
        return {"messages": 0, "lag": 0, "dead_letters": 0, "runs": 0}
    fill_topic(bootstrap, topic, rows)
    lag = commit_short_of_end(bootstrap, topic, group)
    letters = int(rows * DEAD_LETTER_SHARE)
    write_dead_letters(root / "dead_letters", topic, letters)
    write_manifest(root / "serving")
    add_runs(instance, RUNS)
    return {"messages": rows, "lag": lag, "dead_letters": letters, "runs": RUNS}
