"""Ingesting one landing file: its rows into the raw zone, its bad rows into the dead letters,
then the file into processed/ (or, when its content is bad, into rejected/).

The raw files are named `landing-<stem>-<sha8>[-<n>].parquet` with `source_file` =
"<name>@<sha8>", `source_row` = its row number and NULL Kafka metadata. The names are
deterministic, so ingesting the same file again (a retried run, a crash before the file was
moved) replaces those files rather than adding a copy: each file lands exactly once.

A file that is still being written (its size or mtime differ from what the sensor saw, or
change while it is read) is neither written nor moved: FileChanged, and the sensor asks again
once it is still.

Only bad CONTENT rejects a file. An error of the machine (a full disk, a permission, an I/O
error) leaves the file where it is and propagates, for the asset's retry policy and, after that,
the sensor to try again.
"""

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline_assets import schema
from pipeline_assets.raw import dead_letters, message_rules, zone, zone_rows
from pipeline_assets.raw.landing import folder as landing_folder
from pipeline_assets.raw.landing.read import FORMATS, FileRejected, file_format, typed_batches
from pipeline_assets.raw.metadata import WriteSummary

DEAD_LETTERS_PER_FILE = 100_000


class FileChanged(RuntimeError):
    """The landing file changed since it was requested or while it was read: not whole yet."""


@dataclass
class Ingested:
    source: Path  # where the file was when it was ingested
    moved_to: Path
    source_file: str
    summary: WriteSummary = field(default_factory=WriteSummary)
    rows_in_file: int = 0


@dataclass(frozen=True)
class _Provenance:
    source_file: str
    batch_id: str
    ingested_at: datetime


def environment_error(exc: BaseException) -> bool:
    """An error of the machine rather than of the file's bytes: out of memory, or an OSError the
    OS set errno on (EACCES, ENOSPC, EIO, ...). Arrow's errors about corrupt bytes ("Couldn't
    deserialize thrift") are OSErrors too, but without an errno."""
    if isinstance(exc, MemoryError | pa.ArrowCancelled):
        return True
    return isinstance(exc, OSError) and exc.errno is not None


def ingest_file(
    path: Path,
    *,
    raw_dir: Path,
    dead_letter_dir: Path,
    landing_dir: Path,
    batch_id: str,
    max_file_bytes: int = zone.DEFAULT_MAX_FILE_BYTES,
    expected_state: tuple[int, int] | None = None,
) -> Ingested:
    """Write one landing file into the raw zone and move it to processed/.

    A file with bad content moves to rejected/ with a `.error.txt` beside it, and FileRejected
    is raised; an environment error propagates and the file stays in the landing folder.
    `expected_state` (size, mtime_ns) is what the sensor saw; FileChanged when the file differs.
    """
    state = landing_folder.file_state(path)
    if expected_state is not None and tuple(expected_state) != state:
        raise FileChanged(_changed(path, expected_state, state, "since the sensor saw it"))
    try:
        return _ingest(path, raw_dir, dead_letter_dir, landing_dir, batch_id, max_file_bytes, state)
    except FileRejected as exc:
        _unless_changed(path, state, exc)
        landing_folder.reject(path, landing_dir, str(exc))
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        if environment_error(exc):
            raise
        _unless_changed(path, state, exc)
        # unreadable: truncated, corrupt, not what its name says
        message = f"{path.name}: cannot be read as {FORMATS.get(path.suffix.lower(), 'a known format')}: {exc}"
        landing_folder.reject(path, landing_dir, message)
        raise FileRejected(message) from exc


def _unless_changed(path: Path, state: tuple[int, int], exc: BaseException) -> None:
    """A file that looks bad because it grew while it was read is not rejected: FileChanged."""
    now = landing_folder.file_state(path)
    if now != state:
        raise FileChanged(_changed(path, state, now, "while it was read")) from exc


def _changed(path: Path, before: tuple[int, int], now: tuple[int, int], when: str) -> str:
    return (
        f"{path.name} changed {when} (size {before[0]:,} -> {now[0]:,} bytes, mtime_ns {before[1]} -> {now[1]}): "
        "it is still being written; nothing was ingested or moved, and the sensor asks again once it is still"
    )


def _ingest(
    path: Path, raw_dir: Path, dead_dir: Path, landing_dir: Path, batch_id: str, max_file_bytes: int,
    state: tuple[int, int],
) -> Ingested:
    file_format(path)  # an unsupported suffix is rejected before the file is read
    started = time.monotonic()
    sha8 = landing_folder.sha8(path)
    group = "landing-" + re.sub(r"[^A-Za-z0-9._-]", "_", path.stem) + f"-{sha8}"
    result = Ingested(path, path, f"{path.name}@{sha8}")
    origin = _Provenance(result.source_file, batch_id, datetime.now(UTC).replace(tzinfo=None))

    writer = zone.RawZoneWriter(
        raw_dir, lambda info: f"{info.group}-{info.seq}.parquet" if info.seq else f"{info.group}.parquet",
        max_file_bytes=max_file_bytes, max_open_parts=128,
    )  # fmt: skip
    dead: list[pa.Table] = []
    try:
        for typed, first_row in typed_batches(path):
            rows, bad = _split_invalid(typed, first_row, origin)
            result.rows_in_file += typed.num_rows
            if bad is not None:
                dead.append(bad)
                result.summary.dead_letters.update(dead_letters.kinds(bad))
            result.summary.keep_preview(rows)
            writer.write(rows, group)
        if result.rows_in_file and sum(result.summary.dead_letters.values()) == result.rows_in_file:
            kinds = ", ".join(f"{k} {n}" for k, n in result.summary.dead_letters.most_common())
            raise FileRejected(f"{path.name}: not one of its {result.rows_in_file} rows is valid ({kinds})")
        if landing_folder.file_state(path) != state:  # appended to while it was read
            raise FileChanged(_changed(path, state, landing_folder.file_state(path), "while it was read"))
    except BaseException:
        writer.abort()
        raise

    # Durable raw files first, then the dead letters, then the move: a crash in between leaves
    # the file in the landing folder, and ingesting it again rewrites the same names.
    result.summary.add_files(writer.publish())
    if dead:
        table = pa.concat_tables(dead)
        for n, start in enumerate(range(0, table.num_rows, DEAD_LETTERS_PER_FILE)):
            name = f"{group}-{n}.parquet" if n else f"{group}.parquet"
            result.summary.bytes += dead_letters.write(table.slice(start, DEAD_LETTERS_PER_FILE), dead_dir, name)
    result.moved_to = landing_folder.move(path, landing_dir / landing_folder.PROCESSED, sha8)
    result.summary.seconds = time.monotonic() - started
    return result


def _split_invalid(typed: pa.Table, first_row: int, origin: _Provenance) -> tuple[pa.Table, pa.Table | None]:
    """(raw rows with provenance, dead letters or None) of one typed batch of the file."""
    suspects = message_rules.required_violations(typed)
    keep = np.ones(typed.num_rows, dtype=bool)
    keep[suspects] = False
    dead = None
    if suspects.size:
        raw_values, reasons, fields = [], [], []
        for i, row in zip(suspects.tolist(), typed.take(pa.array(suspects)).to_pylist(), strict=True):
            reason, name = message_rules.required_problem(row) or ("unparseable: invalid required field", None)
            raw_values.append(json.dumps(row, default=str).encode())
            reasons.append(f"{reason} (row {first_row + i})")
            fields.append(name)
        dead = dead_letters.dead_letter_table(
            raw_values=raw_values, reasons=reasons, fields=fields, batch_id=origin.batch_id,
            ingested_at=origin.ingested_at, source_file=origin.source_file,
        )  # fmt: skip
        typed = typed.filter(pa.array(keep))
    n = typed.num_rows
    rows = zone_rows.to_raw_table(
        typed,
        {
            "source_file": pa.repeat(pa.scalar(origin.source_file, pa.string()), n),
            "source_row": pa.array(np.arange(first_row, first_row + len(keep), dtype=np.int64)[keep]),
            "batch_id": pa.repeat(pa.scalar(origin.batch_id, pa.string()), n),
            "ingested_at": pa.repeat(pa.scalar(origin.ingested_at, schema.TIMESTAMP), n),
        },
    )
    return rows, dead
