"""A chunk of consumed Kafka messages, and the tables the raw dump makes of it.

Making the tables (`chunk_tables`: parse, type, add the Kafka columns, build the dead letters)
has no side effect, and only then does the dump write them. So a chunk whose processing raises
leaves nothing half done, and can be split and tried again (isolation.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Message

from pipeline_assets import schema
from pipeline_assets.raw import dead_letters, zone_rows
from pipeline_assets.raw.dump import parse
from pipeline_assets.schema import TIMESTAMP


@dataclass
class Chunk:
    """Consumed messages, column by column.

    Filled on the consumer thread, which mostly waits for the worker, so the worker (the
    bottleneck) never touches a Message: one `map` per accessor instead of a Python loop.
    """

    values: list[bytes | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    millis: list[int] = field(default_factory=list)  # m.timestamp() is (type, ms); ms = -1 when none
    replays: list[str | None] = field(default_factory=list)  # the replay header's position, if any
    nbytes: int = 0  # of the values: the chunk closes at DumpOptions.chunk_bytes

    def add(self, batch: list[Message]) -> int:
        """Append a batch; returns the bytes of its values."""
        self.values += map(Message.value, batch)
        self.keys += map(Message.key, batch)
        self.partitions += map(Message.partition, batch)
        self.offsets += map(Message.offset, batch)
        self.millis += [ms for _, ms in map(Message.timestamp, batch)]
        self.replays += [_replay_of(h) if h else None for h in map(Message.headers, batch)]
        added = sum(map(len, batch))  # len(Message): its value's length
        self.nbytes += added
        return added

    def part(self, start: int, stop: int) -> Chunk:
        """Messages start..stop-1, in order."""
        values = self.values[start:stop]
        rest = (column[start:stop] for column in self._columns()[1:])
        return Chunk(values, *rest, nbytes=sum(len(v or b"") for v in values))  # type: ignore[misc]

    def _columns(self) -> tuple[list, ...]:
        return self.values, self.keys, self.partitions, self.offsets, self.millis, self.replays

    def __len__(self) -> int:
        return len(self.offsets)


def _replay_of(headers: list[tuple[str, bytes | None]]) -> str | None:
    """The position a replay names (undecodable bytes kept readable rather than fail)."""
    for key, value in headers:
        if key == schema.REPLAY_HEADER and value is not None:
            return value.decode("utf-8", "backslashreplace")
    return None


@dataclass(frozen=True)
class ChunkTables:
    """What one chunk (or part of one) adds to the raw zone and the dead letters."""

    kafka: pa.Table  # the kafka_* columns and replay_of of every message, rows and dead letters alike
    rows: pa.Table  # schema.RAW_SCHEMA
    dead: pa.Table | None  # dead_letters.DEAD_LETTER_SCHEMA; None when there is none


def kafka_columns(chunk: Chunk, topic: str) -> pa.Table:
    # Lists of ints go through numpy: pa.array() on a Python list of ints was ~20x slower.
    millis = pa.array(np.array(chunk.millis, dtype=np.int64))
    stamps = pc.if_else(pc.less(millis, 0), None, millis).cast(pa.timestamp("ms")).cast(TIMESTAMP)
    keys = pa.array(chunk.keys, pa.binary())
    try:
        key_text = keys.cast(pa.string())
    except pa.ArrowInvalid:  # a key that is not UTF-8: keep it readable rather than fail
        key_text = pa.array([k.decode("utf-8", "replace") if k is not None else None for k in keys.to_pylist()])
    return pa.table(
        {
            "kafka_topic": pa.repeat(pa.scalar(topic, pa.string()), len(chunk)),
            "kafka_partition": pa.array(np.array(chunk.partitions, dtype=np.int32)),
            "kafka_offset": pa.array(np.array(chunk.offsets, dtype=np.int64)),
            "kafka_timestamp": stamps,
            "kafka_key": key_text,
            "replay_of": pa.array(chunk.replays, pa.string()),
        }
    )


def chunk_tables(chunk: Chunk, topic: str, batch_id: str, now: datetime) -> ChunkTables:
    """Parse a chunk into raw rows and dead letters (parse.py decides which is which)."""
    kafka = kafka_columns(chunk, topic)
    parsed = parse.parse_values(chunk.values)
    good_kafka = kafka if len(parsed.good) == len(chunk) else kafka.take(pa.array(parsed.good))
    rows = zone_rows.to_raw_table(
        parsed.table,
        {
            **{name: good_kafka.column(name) for name in good_kafka.column_names},
            "batch_id": pa.repeat(pa.scalar(batch_id, pa.string()), parsed.table.num_rows),
            "ingested_at": pa.repeat(pa.scalar(now, TIMESTAMP), parsed.table.num_rows),
        },
    )
    dead = None
    if parsed.dead:
        dead = dead_letters.dead_letter_table(
            raw_values=[chunk.values[d.index] for d in parsed.dead],
            reasons=[d.reason for d in parsed.dead],
            fields=[d.field for d in parsed.dead],
            batch_id=batch_id,
            ingested_at=now,
            kafka=kafka.take(pa.array([d.index for d in parsed.dead])),
        )
    return ChunkTables(kafka, rows, dead)


def dead_chunk_tables(chunk: Chunk, reason: str, topic: str, batch_id: str, now: datetime) -> ChunkTables:
    """Every message of the chunk as a dead letter with `reason` (no field)."""
    kafka = kafka_columns(chunk, topic)
    dead = dead_letters.dead_letter_table(
        raw_values=chunk.values,
        reasons=[reason] * len(chunk),
        fields=[None] * len(chunk),
        batch_id=batch_id,
        ingested_at=now,
        kafka=kafka,
    )
    return ChunkTables(kafka, schema.RAW_SCHEMA.empty_table(), dead)
