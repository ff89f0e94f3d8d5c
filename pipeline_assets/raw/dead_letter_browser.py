"""Browsing the dead-letter zone: what the Kafka page and `redset dead-letters list|show` print.

A letter's bytes are whatever a producer sent, so they are only ever shown escaped (printable
ASCII as it is, every other byte as \\xNN, as Python writes bytes): never rendered as Markdown or
HTML. A re-delivery can write one (topic, partition, offset) twice: it is listed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_assets.raw.dead_letters import read_dead_letters

FIRST_BYTES = 120
LISTED = ["kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "reason", "field", "source_file",
          "ingested_at"]  # fmt: skip


def escaped(raw: bytes | None, limit: int = FIRST_BYTES) -> str:
    """The first `limit` bytes as text that cannot render: b'<b>\\x00' -> '<b>\\\\x00'."""
    if raw is None:
        return ""
    text = repr(bytes(raw[:limit]))[2:-1]
    return text + ("…" if len(raw) > limit else "")


@dataclass(frozen=True)
class Position:
    """A Kafka message's place: `topic:partition:offset` on the command line."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> Position:
        topic, sep, rest = text.rpartition(":")
        topic, sep2, partition = topic.rpartition(":")
        if not (sep and sep2 and topic and partition.isdigit() and rest.isdigit()):
            raise ValueError(f"{text!r}: expected TOPIC:PARTITION:OFFSET, for example redset.queries:0:42")
        return cls(topic, int(partition), int(rest))


def letters(directory: Path, kinds: list[str] | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int | None = 500) -> pa.Table:  # fmt: skip
    """Dead letters newest first (by ingestion), with `kind`, `bytes` and escaped `first_bytes`;
    filtered by kind and by ingestion time (both ends included), at most `limit`."""
    table = read_dead_letters(directory, LISTED + ["raw_value"])
    kind = pc.list_element(pc.split_pattern(table.column("reason"), ":", max_splits=1), 0)
    table = table.append_column("kind", kind)
    table = _once_per_position(table)
    at = table.column("ingested_at")
    masks = []
    if kinds:
        masks.append(pc.is_in(table.column("kind"), value_set=pa.array(kinds, pa.string())))
    if since is not None:
        masks.append(pc.greater_equal(at, pa.scalar(since, at.type)))
    if until is not None:
        masks.append(pc.less_equal(at, pa.scalar(until, at.type)))
    if masks:
        keep = masks[0]
        for mask in masks[1:]:
            keep = pc.and_(keep, mask)
        table = table.filter(keep)
    table = table.sort_by([("ingested_at", "descending"), ("kafka_topic", "ascending"), ("kafka_partition", "ascending"),
                           ("kafka_offset", "ascending")])  # fmt: skip
    if limit is not None:
        table = table.slice(0, limit)
    raw = table.column("raw_value").to_pylist()
    table = table.drop_columns(["raw_value"])
    table = table.append_column("bytes", pa.array([None if r is None else len(r) for r in raw], pa.int64()))
    return table.append_column("first_bytes", pa.array([escaped(r) for r in raw], pa.string()))


def _once_per_position(table: pa.Table) -> pa.Table:
    """The first row of each (topic, partition, offset); landing rows (no topic) all stay."""
    seen: set[tuple] = set()
    keep = []
    for t, p, o in zip(*(table.column(c).to_pylist() for c in ("kafka_topic", "kafka_partition", "kafka_offset")), strict=True):
        key = (t, p, o)
        keep.append(t is None or key not in seen)
        seen.add(key)
    return table.filter(pa.array(keep, pa.bool_())) if table.num_rows else table


def raw_bytes(directory: Path, position: Position) -> tuple[bytes | None, dict[str, object]]:
    """The kept bytes and the listed fields of the letter at `position`; KeyError if none."""
    table = read_dead_letters(directory, LISTED + ["raw_value"])
    match = pc.and_(pc.and_(pc.equal(table.column("kafka_topic"), position.topic),
                            pc.equal(table.column("kafka_partition"), position.partition)),
                    pc.equal(table.column("kafka_offset"), position.offset))  # fmt: skip
    found = table.filter(match).to_pylist() if table.num_rows else []
    if not found:
        raise KeyError(f"no dead letter at {position.topic}:{position.partition}:{position.offset} in {directory}")
    row = found[0]
    return row.pop("raw_value"), row
