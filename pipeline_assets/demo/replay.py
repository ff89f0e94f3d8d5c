"""What the demo replays: the source, or only its rows from where an earlier demo's replay stopped."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipeline_assets import settings


@dataclass(frozen=True)
class TopicState:
    """How far an earlier replay got: messages on the topic, and the arrival time from which a
    new replay loses nothing (None: from the start)."""

    messages: int
    resume_from: datetime | None


def topic_state(bootstrap: str | None = None) -> TopicState:
    """Read the last message of every partition of the topic.

    The producer keeps each partition in send order (arrival order), but a stopped replay leaves
    partitions at different points. Rows that arrived before the earliest of the partitions'
    last messages are on the topic for sure; replaying from there duplicates a few rows (dbt's
    clean step keeps one per query) and loses none.
    """
    from confluent_kafka import Consumer, TopicPartition

    from pipeline_assets.kafka.config import client_config
    from pipeline_assets.kafka.offsets import TopicMissing, partition_offsets

    overrides = {"group.id": "redset-demo-probe", "enable.auto.commit": False}
    if bootstrap:
        overrides["bootstrap.servers"] = bootstrap
    consumer = Consumer(client_config(**overrides))
    try:
        try:
            offsets = partition_offsets(consumer, settings.topic())
        except TopicMissing:
            return TopicState(0, None)
        messages = sum(o.high for o in offsets)
        if messages == 0 or any(o.high <= o.low for o in offsets):
            return TopicState(messages, None)  # a partition holds nothing: start over
        consumer.assign([TopicPartition(settings.topic(), o.partition, o.high - 1) for o in offsets])
        last: dict[int, datetime] = {}
        deadline = time.monotonic() + 30
        while len(last) < len(offsets) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None and msg.partition() not in last:
                last[msg.partition()] = datetime.fromisoformat(json.loads(msg.value())["arrival_timestamp"])
        if len(last) < len(offsets):
            return TopicState(messages, None)
        return TopicState(messages, min(last.values()))
    finally:
        consumer.close()


def rows_from(source: str, since: datetime, out: Path) -> tuple[int, int]:
    """Write the rows of `source` that arrived at or after `since` to `out`, in the reader's
    order; return (rows written, rows in the source). Nothing is written when none qualify."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline_assets.source import reader

    total = kept = 0
    tmp = out.with_name(f".{out.name}.tmp")
    writer: pq.ParquetWriter | None = None
    bound = pa.scalar(since, pa.timestamp("us"))
    try:
        for batch in reader.iter_batches(source):
            total += batch.num_rows
            batch = batch.filter(pc.greater_equal(batch.column("arrival_timestamp"), bound))
            if batch.num_rows:
                writer = writer or pq.ParquetWriter(tmp, batch.schema)
                writer.write_batch(batch)
                kept += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if kept:
        os.replace(tmp, out)
    tmp.unlink(missing_ok=True)
    return kept, total


def replay_file(source: str, bootstrap: str | None) -> str | None:
    """What to replay: `source`, or its rows from where an earlier demo's replay stopped.

    An earlier run of the same source is known from data/demo-state.json; the topic's last
    messages say how far it got (topic_state). None when the whole source is on the topic.
    """
    topic = topic_state(bootstrap)
    state = settings.data_dir() / "demo-state.json"
    previous = json.loads(state.read_text()).get("source") if state.exists() else None
    state.write_text(json.dumps({"source": source}))
    # No state file: an older demo, of the same source as far as anyone knows.
    other_source = previous is not None and previous != source
    if topic.messages and other_source:
        print(f"The topic holds {topic.messages:,} messages from another source; replaying all of {source}.")
    if topic.resume_from is None or other_source:
        return source
    rest = settings.data_dir() / "demo-replay.parquet"
    kept, total = rows_from(source, topic.resume_from, rest)
    if kept == 0:
        print(f"The topic already holds all {total:,} rows of {source}: nothing left to replay.")
        return None
    print(
        f"The topic holds {topic.messages:,} messages of {total:,} rows from an earlier run: replaying "
        f"the {kept:,} that arrived from {topic.resume_from:%Y-%m-%d %H:%M} on (dbt keeps one copy of each)."
    )
    return str(rest)
