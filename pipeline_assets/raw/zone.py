"""Writing the raw zone: append-only Parquet, Hive layout by arrival date, atomic files.

    <root>/arrival_date=YYYY-MM-DD/<final name>.parquet

A part file is written under a hidden temporary name (`.<pid>-....parquet.tmp`, which every
reader ignores), fsynced when it is closed, and only renamed to its final name by publish(),
followed by an fsync of the directory. A reader therefore never sees half a file, and a file
that has a final name survives a crash. Final names are deterministic (the caller's `namer`
builds them from the Kafka offsets or the landing file's hash), so writing the same rows again
replaces a file instead of adding a copy.

Memory stays bounded: rows are buffered per (arrival date, group) only until a row group is
full or the buffers reach `buffer_bytes`, and a part file rotates when it reaches
`max_file_bytes`. At most `max_open_parts` files are open at once; the one written least
recently is closed first (with time-ordered data, that is a day no new row arrives for).

zone_rows shapes the rows written here; zone_read reads the published files back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_assets import schema
from pipeline_assets.durable import fsync_dir, fsync_path, pid_alive
from pipeline_assets.raw.zone_rows import split_by_arrival_date

# Snappy, not zstd: the raw dump's profile had zstd's per-page compression as the largest part
# of Parquet writing (the bench's parts are small: one per Kafka partition and day). Snappy
# cost a quarter less CPU per row at about 1.5x the bytes; every Parquet reader (DuckDB too)
# reads it. The dbt models and serving exports, written once and read often, keep zstd.
COMPRESSION = "snappy"
# Parquet tuning (measured: a third less CPU per row than the defaults, and smaller files).
# Dictionary-encode every column but the nearly unique ones, where it only costs time...
_UNIQUE_ISH = {"query_id", "arrival_timestamp", "execution_duration_ms", "mbytes_scanned", "kafka_offset",
               "kafka_timestamp", "source_row"}  # fmt: skip
DICTIONARY_COLUMNS = [n for n in schema.RAW_SCHEMA.names if n not in _UNIQUE_ISH]
# ...and keep min/max statistics for the columns readers filter on.
STATISTICS_COLUMNS = ["deployment", "instance_id", "arrival_timestamp", "kafka_topic", "kafka_partition",
                      "kafka_offset", "source_file", "batch_id"]  # fmt: skip
PARQUET_OPTIONS = {
    "compression": COMPRESSION,
    "use_dictionary": DICTIONARY_COLUMNS,
    "write_statistics": STATISTICS_COLUMNS,
}
DEFAULT_MAX_FILE_BYTES = 128 << 20
DEFAULT_ROW_GROUP_ROWS = 128 * 1024
DEFAULT_BUFFER_BYTES = 64 << 20
DEFAULT_MAX_OPEN_PARTS = 64
TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class PartInfo:
    """What a namer knows about a closed part file."""

    group: str  # e.g. "redset.queries-p0" or "landing-<stem>-<sha8>"
    arrival_date: date
    seq: int  # 0, 1, 2... per (group, arrival_date) within one writer
    rows: int
    first_offset: int | None  # min/max kafka_offset in the file (None for landing rows)
    last_offset: int | None


Namer = Callable[[PartInfo], str]


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    arrival_date: date
    rows: int
    bytes: int


@dataclass
class _Part:
    """One open part file and the rows buffered for its next row group."""

    group: str
    arrival_date: date
    seq: int
    temp_path: Path
    writer: pq.ParquetWriter
    sink: pa.NativeFile
    buffered: list[pa.Table] = field(default_factory=list)
    buffered_rows: int = 0
    buffered_bytes: int = 0
    rows: int = 0
    first_offset: int | None = None
    last_offset: int | None = None


def date_dir(root: Path, day: date) -> Path:
    return root / f"{schema.RAW_PARTITION_COLUMN}={day.isoformat()}"


def temp_name(final_name: str) -> str:
    """Hidden and with a non-Parquet suffix, tagged with our pid so leftovers can be told apart."""
    return f".{os.getpid()}-{final_name}{TEMP_SUFFIX}"


def write_table_atomically(table: pa.Table, path: Path) -> int:
    """Write one small Parquet file: temp name, fsync, rename, fsync the directory. Returns bytes."""
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    if created:
        fsync_dir(path.parent.parent)
    temp = path.with_name(temp_name(path.name))
    pq.write_table(table, temp, compression=COMPRESSION)
    fsync_path(temp)
    os.replace(temp, path)
    fsync_dir(path.parent)
    return path.stat().st_size


def remove_stale_temp_files(root: Path) -> int:
    """Delete temporary files left by dead processes (a crash mid-write). Returns how many."""
    removed = 0
    if not root.exists():
        return 0
    for temp in root.rglob(f".*{TEMP_SUFFIX}"):
        pid = temp.name[1:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


class RawZoneWriter:
    """Streams tables of schema.RAW_SCHEMA into Hive-partitioned, size-bounded Parquet parts.

    write() as often as needed, then publish() to make everything written so far visible and
    durable, or abort() to throw it away.
    """

    def __init__(
        self,
        root: Path,
        namer: Namer,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        max_open_parts: int = DEFAULT_MAX_OPEN_PARTS,
    ) -> None:
        self.root = Path(root)
        self.namer = namer
        self.max_file_bytes = max_file_bytes
        self.row_group_rows = row_group_rows
        self.buffer_bytes = buffer_bytes
        self.max_open_parts = max_open_parts
        self._open: dict[tuple[str, date], _Part] = {}  # in order of last write: oldest first
        self._next_seq: dict[tuple[str, date], int] = {}
        self._closed: list[tuple[_Part, str]] = []  # (part, final name), waiting for publish()
        self._buffered_bytes = 0

    # --- writing ---------------------------------------------------------------------------

    def write(self, table: pa.Table, group: str) -> None:
        """Append rows (schema.RAW_SCHEMA) of one group, split by arrival date."""
        if table.num_rows == 0:
            return
        table = table.select(schema.RAW_SCHEMA.names).cast(schema.RAW_SCHEMA)
        for day, rows in split_by_arrival_date(table):
            part = self._part(group, day)
            part.buffered.append(rows)
            part.buffered_rows += rows.num_rows
            part.buffered_bytes += rows.nbytes
            self._buffered_bytes += rows.nbytes
            if part.buffered_rows >= self.row_group_rows:
                self._flush_buffer(part)
        while self._buffered_bytes > self.buffer_bytes:
            self._flush_buffer(max(self._open.values(), key=lambda p: p.buffered_bytes))

    def _part(self, group: str, day: date) -> _Part:
        key = (group, day)
        part = self._open.pop(key, None)
        if part is not None:
            self._open[key] = part  # now the most recently written
        else:
            if len(self._open) >= self.max_open_parts:
                self._close(next(iter(self._open.values())))
            seq = self._next_seq.get(key, 0)
            self._next_seq[key] = seq + 1
            directory = date_dir(self.root, day)
            if not directory.exists():
                directory.mkdir(parents=True, exist_ok=True)
                fsync_dir(self.root)
            temp_path = directory / temp_name(f"{group}-{seq}.parquet")
            sink = pa.OSFile(str(temp_path), "wb")
            writer = pq.ParquetWriter(sink, schema.RAW_SCHEMA, **PARQUET_OPTIONS)
            part = self._open[key] = _Part(group, day, seq, temp_path, writer, sink)
        return part

    def _flush_buffer(self, part: _Part) -> None:
        """Write the buffered rows of a part in row groups of about `row_group_rows`, going on
        to the group's next file whenever one is full: a file ends at most one row group over
        `max_file_bytes`, whatever the codec's ratio."""
        if not part.buffered:
            return
        rows = self._take_buffer(part)
        groups = max(1, round(rows.num_rows / self.row_group_rows))  # even sizes, no tiny last one
        step = -(-rows.num_rows // groups)
        for start in range(0, rows.num_rows, step):
            if part.rows and part.sink.tell() >= self.max_file_bytes:
                self._close(part)
                part = self._part(part.group, part.arrival_date)
            self._write_rows(part, rows.slice(start, step))
        if part.sink.tell() >= self.max_file_bytes:
            self._close(part)

    def _write_buffer(self, part: _Part) -> None:
        if part.buffered:
            self._write_rows(part, self._take_buffer(part))

    def _take_buffer(self, part: _Part) -> pa.Table:
        rows = pa.concat_tables(part.buffered)
        self._buffered_bytes -= part.buffered_bytes
        part.buffered, part.buffered_rows, part.buffered_bytes = [], 0, 0
        return rows

    def _write_rows(self, part: _Part, rows: pa.Table) -> None:
        """One row group."""
        part.writer.write_table(rows, row_group_size=rows.num_rows)
        part.rows += rows.num_rows
        offsets = rows.column("kafka_offset")
        if offsets.null_count < rows.num_rows:
            low, high = pc.min(offsets).as_py(), pc.max(offsets).as_py()
            part.first_offset = low if part.first_offset is None else min(part.first_offset, low)
            part.last_offset = high if part.last_offset is None else max(part.last_offset, high)

    def _close(self, part: _Part) -> None:
        self._write_buffer(part)
        part.writer.close()
        part.sink.close()
        fsync_path(part.temp_path)
        del self._open[(part.group, part.arrival_date)]
        info = PartInfo(part.group, part.arrival_date, part.seq, part.rows, part.first_offset, part.last_offset)
        self._closed.append((part, self.namer(info)))

    # --- making it visible -----------------------------------------------------------------

    def publish(self) -> list[WrittenFile]:
        """Close every open part and rename all closed parts to their final names, durably."""
        for part in list(self._open.values()):
            self._close(part)
        written: list[WrittenFile] = []
        directories: set[Path] = set()
        for part, final_name in self._closed:
            if part.rows == 0:
                part.temp_path.unlink(missing_ok=True)
                continue
            final = part.temp_path.with_name(final_name)
            os.replace(part.temp_path, final)
            directories.add(final.parent)
            written.append(WrittenFile(final, part.arrival_date, part.rows, final.stat().st_size))
        for directory in directories:
            fsync_dir(directory)
        self._closed = []
        return written

    def abort(self) -> None:
        """Forget everything not yet published and delete its temporary files."""
        for part in list(self._open.values()):
            part.writer.close()
            part.sink.close()
            self._closed.append((part, ""))
        self._open.clear()
        for part, _ in self._closed:
            part.temp_path.unlink(missing_ok=True)
        self._closed = []
        self._buffered_bytes = 0
