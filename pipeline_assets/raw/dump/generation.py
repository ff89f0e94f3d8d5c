"""Which topic the raw zone was filled from, and a refusal to mix in another one (a topic reset).

Offsets are unique only within one topic's life. When the topic is deleted and created again, or
the broker's data is wiped while data/ stays, new messages get offsets the raw zone already holds:
staging would drop them as duplicates, and raw files of the same name would be overwritten. So the
raw zone records the topic id it was filled from (`<raw>/_generations/<topic>.json`), the dump
names its files with it, and a dump that finds another topic id, or a committed offset above the
high watermark, stops before it moves anything: one line, one alert (TopicReset).

A new generation is started on purpose with `new_generation` (run config of raw_queries or
live_mode_job, `redset live --new-generation`): the
group's committed offsets go back to the start of the new topic's log, then the new id is recorded.
A zone without a record (new, or written before topic ids) adopts the topic it finds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from pipeline_assets.alerts import send_alert
from pipeline_assets.durable import fsync_dir, fsync_path
from pipeline_assets.kafka import offsets
from pipeline_assets.raw.dump.checkpoint import commit

GENERATIONS = "_generations"  # readers glob arrival_date=*/ only


class TopicReset(RuntimeError):
    """The topic is not the one the raw zone was filled from; nothing was consumed."""


def record_path(raw_dir: Path, topic: str) -> Path:
    return raw_dir / GENERATIONS / f"{topic}.json"


def recorded_id(raw_dir: Path, topic: str) -> str | None:
    path = record_path(raw_dir, topic)
    return json.loads(path.read_text())["topic_id"] if path.exists() else None


def record(raw_dir: Path, topic: str, topic_id: str) -> None:
    """Durably: a temporary file, fsync, rename, fsync the folder."""
    path = record_path(raw_dir, topic)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{os.getpid()}-{path.name}.tmp")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    temp.write_text(json.dumps({"topic": topic, "topic_id": topic_id, "since": when}) + "\n")
    fsync_path(temp)
    os.replace(temp, path)
    fsync_dir(path.parent)


def checked_plan(
    consumer: Consumer,
    plan: list[offsets.PartitionOffsets],
    *,
    topic: str,
    topic_id: str | None,
    raw_dir: Path,
    new_generation: bool,
    log: Callable[[str], Any],
) -> list[offsets.PartitionOffsets]:
    """`plan` when the topic is the raw zone's; after a reset, TopicReset, or with `new_generation`
    the plan of a new generation (committed offsets moved to the low watermarks)."""
    known = recorded_id(raw_dir, topic)
    if topic_id is None and known is not None:  # the topic exists (plan), its id did not answer
        raise TopicReset(f"topic {topic}: its topic id could not be read, so it cannot be told from a re-created "
                         "topic; nothing was consumed (the next run tries again)")  # fmt: skip
    other_topic = topic_id is not None and known is not None and known != topic_id
    beyond = [p for p in plan if p.committed is not None and p.committed > p.high]
    if not other_topic and not beyond:
        if topic_id is not None and known is None:
            record(raw_dir, topic, topic_id)
        return plan
    what = (
        f"topic {topic} has id {topic_id}, but the raw zone was filled from id {known}"
        if other_topic
        else "the committed offset is above the high watermark on "
        + ", ".join(f"partition {p.partition} ({p.committed} > {p.high})" for p in beyond)
    )
    if not new_generation:
        message = (
            f"topic reset: {what}; the topic was re-created or the broker's data wiped, so offsets would be "
            "reused. Nothing was consumed. To start a new generation on purpose, run raw_queries with "
            "new_generation: true (live mode: `redset live --new-generation`, or live_mode_job with new_generation: true)"
        )
        send_alert("topic_reset", message, None, topic=topic, topic_id=topic_id, recorded_topic_id=known)
        raise TopicReset(message)
    restart = plan if other_topic else beyond
    commit(consumer, [TopicPartition(topic, p.partition, p.low) for p in restart], log)
    if topic_id is not None:
        record(raw_dir, topic, topic_id)
    restarted = [p.partition for p in restart]
    log(f"new generation of {topic} (id {topic_id}): {what}; partitions {restarted} start again at the low watermark")
    return offsets.partition_offsets(consumer, topic)
