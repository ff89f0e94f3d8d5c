"""The dead-letter dataset: messages and landing rows that could not be parsed or typed.

    <settings.dead_letter_dir()>/<topic>-p<partition>-o<first>-<last>.parquet   (Kafka)
    <settings.dead_letter_dir()>/landing-<stem>-<sha8>.parquet                   (landing files)

One row per rejected message with its raw bytes (up to MAX_RAW_BYTES; the reason says when fewer
were kept), where it came from and a reason that starts with its kind (see parse.py) and names
the field. A replay (`redset dead-letters replay`) that fails again is a letter whose replay_of
names the first letter's position: readers group the attempts under it. Writing never fails on what a message held: reasons and fields are made valid UTF-8. Files are written atomically like the raw
zone's, and a re-delivery after a crash can write the same (topic, partition, offset) twice:
readers dedupe on it, as for raw rows.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_assets import schema
from pipeline_assets.raw.zone import write_table_atomically
from pipeline_assets.storage import filesystem

# Kafka brokers refuse messages over ~1 MB by default, so every dead letter keeps all of its bytes
# unless the broker was opened up; then a bounded prefix keeps one chunk's dead letters in memory.
MAX_RAW_BYTES = 16 << 20
MAX_TEXT_CHARS = 2000

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("kafka_topic", pa.string()),
        pa.field("kafka_partition", pa.int32()),
        pa.field("kafka_offset", pa.int64()),
        pa.field("kafka_timestamp", schema.TIMESTAMP),
        pa.field("kafka_key", pa.string()),
        pa.field("raw_value", pa.binary()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("ingested_at", schema.TIMESTAMP, nullable=False),
        # A failed replay: the first letter's position (files from before replays read it as NULL).
        pa.field("replay_of", pa.string()),
    ]
)
# The columns that come with each message from Kafka (`kafka` of dead_letter_table).
MESSAGE_COLUMNS = [f.name for f in DEAD_LETTER_SCHEMA if f.name.startswith("kafka_") or f.name == "replay_of"]


def dead_letter_table(
    *,
    raw_values: Sequence[bytes | None],
    reasons: Sequence[str],
    fields: Sequence[str | None],
    batch_id: str,
    ingested_at: datetime,
    kafka: pa.Table | None = None,
    source_file: str | None = None,
) -> pa.Table:
    """Rows of DEAD_LETTER_SCHEMA. `kafka` holds the kafka_* columns of the same messages, and
    replay_of if any of them is a replay."""
    n = len(raw_values)
    kept, notes = zip(*map(_bounded, raw_values), strict=True) if n else ((), ())
    columns: dict[str, pa.Array] = {
        "raw_value": pa.array(kept, pa.binary()),
        "reason": pa.array([f"{_text(r)}{note}" for r, note in zip(reasons, notes, strict=True)], pa.string()),
        "field": pa.array([_text(f) for f in fields], pa.string()),
        "source_file": pa.array([source_file] * n, pa.string()),
        "batch_id": pa.array([batch_id] * n, pa.string()),
        "ingested_at": pa.array([ingested_at] * n, schema.TIMESTAMP),
    }
    for f in DEAD_LETTER_SCHEMA:
        if f.name in MESSAGE_COLUMNS:
            given = kafka is not None and f.name in kafka.column_names
            columns[f.name] = kafka.column(f.name) if given else pa.nulls(n, f.type)
    return pa.table([columns[f.name] for f in DEAD_LETTER_SCHEMA], schema=DEAD_LETTER_SCHEMA)


def _bounded(value: bytes | None) -> tuple[bytes | None, str]:
    """The raw bytes, all of them up to MAX_RAW_BYTES; beyond, the first MAX_RAW_BYTES and a note."""
    if value is None or len(value) <= MAX_RAW_BYTES:
        return value, ""
    return value[:MAX_RAW_BYTES], f" (raw_value: the first {MAX_RAW_BYTES} of {len(value)} bytes kept)"


def _text(text: str | None) -> str | None:
    """Any text as valid UTF-8 of bounded length: a reason may quote a lone surrogate or a long key."""
    if text is None:
        return None
    if len(text) > MAX_TEXT_CHARS:
        text = f"{text[:MAX_TEXT_CHARS]}...({len(text)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write(table: pa.Table, directory: Path, name: str) -> int:
    """Write one dead-letter file atomically; returns its size in bytes."""
    return write_table_atomically(table, Path(directory) / name)


def kinds(table: pa.Table) -> dict[str, int]:
    """Count of dead letters per kind (the reason up to its first colon)."""
    return dict(Counter(r.split(":", 1)[0] for r in table.column("reason").to_pylist()))


def read_dead_letters(directory: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """Every published dead letter, in a folder or under an s3:// URL (tests and checks)."""
    fs, files = filesystem.published(directory, "*.parquet")
    if not files:
        return DEAD_LETTER_SCHEMA.empty_table().select(columns or DEAD_LETTER_SCHEMA.names)
    return pa.concat_tables(pq.read_table(f, columns=columns, schema=DEAD_LETTER_SCHEMA, filesystem=fs) for f in files)
