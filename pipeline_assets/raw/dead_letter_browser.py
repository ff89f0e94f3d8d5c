"""Browsing the dead-letter zone: what the Kafka page and `redset dead-letters list|show` print.

A letter's bytes are whatever a producer sent, so they are only ever shown escaped (printable
ASCII as it is, every other byte as \\xNN, as Python writes bytes): never rendered as Markdown or
HTML. A re-delivery can write one (topic, partition, offset) twice: it is listed once. A replay
that fails again (its replay_of names the first position) is an attempt of the same letter.
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
READ = [*LISTED, "kafka_key", "replay_of", "raw_value"]


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

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True)
class Letter:
    """One dead letter as a replay sees it: its first position, and the bytes and key of its
    latest attempt (the bytes to fix, or to send again after a parser fix)."""

    position: Position  # where it first failed: what replays name in their header
    latest: Position  # the last attempt (== position until a replay failed again)
    kind: str
    key: str | None
    value: bytes | None
    attempts: int


def letters(directory: Path, kinds: list[str] | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int | None = 500) -> pa.Table:  # fmt: skip
    """Dead letters newest first (by ingestion), with `kind`, `bytes`, escaped `first_bytes` and
    `attempts` (the positions it failed at, first one first); filtered by kind and by ingestion
    time (both ends included), at most `limit`. A replay that failed again is not a new letter:
    it is the first letter's latest attempt, whose reason, time and bytes the row shows."""
    table = _grouped(directory)
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
    table = table.drop_columns(["raw_value", "kafka_key", "replay_of"])
    table = table.append_column("bytes", pa.array([None if r is None else len(r) for r in raw], pa.int64()))
    return table.append_column("first_bytes", pa.array([escaped(r) for r in raw], pa.string()))


def _grouped(directory: Path) -> pa.Table:
    """One row per letter: the latest attempt's fields under the first attempt's position, with
    `attempts` and `kind`. Landing letters (no position) are one row each."""
    table = read_dead_letters(directory, READ)
    if table.num_rows == 0:
        return _with_kind(table.append_column("attempts", pa.array([], pa.list_(pa.string()))))
    topics, partitions, offsets, replays, stamps = (table.column(c).to_pylist() for c in
                                                    ("kafka_topic", "kafka_partition", "kafka_offset", "replay_of", "ingested_at"))  # fmt: skip
    groups: dict[object, list[int]] = {}
    for i, (t, p, o, replay) in enumerate(zip(topics, partitions, offsets, replays, strict=True)):
        groups.setdefault(i if t is None else (replay or f"{t}:{p}:{o}"), []).append(i)
    rows, firsts, attempts = [], [], []
    for root, members in groups.items():
        # The first letter, then its replays in the order they were written; a re-delivery once.
        members.sort(key=lambda i: (replays[i] is not None, stamps[i], partitions[i], offsets[i]))
        seen: dict[str, int] = {}
        for i in members:
            seen.setdefault(f"{topics[i]}:{partitions[i]}:{offsets[i]}", i)
        rows.append(list(seen.values())[-1])
        firsts.append(Position.parse(root) if isinstance(root, str) else None)
        attempts.append(list(seen) if isinstance(root, str) else [])
    table = table.take(pa.array(rows, pa.int64()))
    for name, values, kind in (("kafka_topic", [f and f.topic for f in firsts], pa.string()),
                               ("kafka_partition", [f and f.partition for f in firsts], pa.int32()),
                               ("kafka_offset", [f and f.offset for f in firsts], pa.int64())):  # fmt: skip
        kept = table.column(name)
        table = table.set_column(table.schema.get_field_index(name), name,
                                 pc.coalesce(pa.array(values, kind), kept))  # fmt: skip
    return _with_kind(table.append_column("attempts", pa.array(attempts, pa.list_(pa.string()))))


def _with_kind(table: pa.Table) -> pa.Table:
    return table.append_column("kind", pc.list_element(pc.split_pattern(table.column("reason"), ":", max_splits=1), 0))


def _find(table: pa.Table, position: Position, directory: Path) -> dict[str, object]:
    """The letter whose first or any later attempt is at `position`; KeyError if none."""
    wanted = str(position)
    for row in table.to_pylist():
        if wanted in row["attempts"]:
            return row
    raise KeyError(f"no dead letter at {wanted} in {directory}")


def raw_bytes(directory: Path, position: Position) -> tuple[bytes | None, dict[str, object]]:
    """The kept bytes (of the latest attempt) and the listed fields of the letter at `position`; KeyError if none."""
    row = _find(_grouped(directory), position, directory)
    return row.pop("raw_value"), {k: row[k] for k in [*LISTED, "attempts"]}


def to_replay(directory: Path, kinds: list[str] | None = None, position: Position | None = None) -> list[Letter]:
    """The letters of `kinds`, or the one at `position` (its first or a later attempt), oldest
    first. ValueError naming a kind no letter has; KeyError for a position with no letter."""
    table = _grouped(directory)
    table = table.filter(pc.is_valid(table.column("kafka_topic")))  # landing letters have no topic to go back to
    if position is not None:
        chosen = [_find(table, position, directory)]
    else:
        known = set(table.column("kind").to_pylist())
        unknown = sorted(set(kinds or []) - known)
        if unknown:
            raise ValueError(f"no dead letter of kind {', '.join(map(repr, unknown))} in {directory} "
                             f"(kinds there: {', '.join(sorted(known)) or 'none'})")  # fmt: skip
        if kinds:
            table = table.filter(pc.is_in(table.column("kind"), value_set=pa.array(kinds, pa.string())))
        chosen = table.sort_by([("ingested_at", "ascending"), ("kafka_partition", "ascending"),
                                ("kafka_offset", "ascending")]).to_pylist()  # fmt: skip
    return [Letter(Position(r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]), Position.parse(r["attempts"][-1]),
                   r["kind"], r["kafka_key"], r["raw_value"], len(r["attempts"])) for r in chosen]  # fmt: skip
