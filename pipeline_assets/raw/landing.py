"""The `landing_queries` asset: Redset files dropped into the landing folder, into the raw zone.

    <settings.landing_dir()>/queries.parquet     a file waiting (parquet, csv or ndjson/jsonl)
                            processed/           ingested files move here
                            rejected/            bad files move here, with <name>.error.txt

landing_file_sensor (sensors.py) requests one run per new file, with its path in the run
config. A file is typed with the same conform() as the Kafka producer's reader, written to
the raw zone as `landing-<stem>-<sha8>[-<n>].parquet` (sha8: the first 8 hex digits of the
file's SHA-256) with `source_file` = "<name>@<sha8>", `source_row` = its row number and NULL
Kafka metadata. The names are deterministic, so ingesting the same file again (a retried run,
a crash before the file was moved) replaces those files rather than adding a copy: each file
lands exactly once.

What makes a whole file bad (it is rejected, nothing is written): it cannot be read (truncated
or not really parquet/csv/JSON), it lacks a required column, a column holds values of the
wrong type, the deployment is unknown (no column, and neither 'provisioned' nor 'serverless'
in its name), or not one row is valid. A row with a null or blank required field goes to the
dead letters, like a bad Kafka message.
"""

import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from pipeline_assets import schema, settings
from pipeline_assets.raw import dead_letters, parse, zone
from pipeline_assets.durable import fsync_dir
from pipeline_assets.raw.metadata import WriteSummary
from pipeline_assets.source import reader

FORMATS = {".parquet": "parquet", ".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson"}
BATCH_ROWS = 100_000
BLOCK_BYTES = 16 << 20
DEAD_LETTERS_PER_FILE = 100_000
PROCESSED, REJECTED = "processed", "rejected"
# A file modified this recently may still be being copied in; the sensor waits for it.
SETTLE_SECONDS = 2.0


class FileRejected(Exception):
    """The whole file is unusable; the message says why, naming the file."""


@dataclass
class Ingested:
    source: Path  # where the file was when it was ingested
    moved_to: Path
    source_file: str
    summary: WriteSummary = field(default_factory=WriteSummary)
    rows_in_file: int = 0


# --- finding files -----------------------------------------------------------------------------


def waiting_files(landing_dir: Path, settle_seconds: float = 0.0) -> list[Path]:
    """Files at the top of the landing folder, oldest first; hidden and `_`-prefixed names
    (files being written) and files modified in the last `settle_seconds` are left alone."""
    if not landing_dir.is_dir():
        return []
    now = datetime.now().timestamp()
    files = [
        p
        for p in landing_dir.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and now - p.stat().st_mtime >= settle_seconds
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def file_state(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): what the sensor remembers of a file."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def run_key(path: Path) -> str:
    size, mtime_ns = file_state(path)
    return f"{path.name}:{size}:{mtime_ns}"


def run_config(path: Path) -> dict[str, Any]:
    return {"ops": {"landing_queries": {"config": {"path": str(path)}}}}


# --- reading one file --------------------------------------------------------------------------


def _sha8(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:8]


def _batches(path: Path, kind: str) -> Iterator[pa.Table]:
    """The file's rows as Arrow tables of at most BATCH_ROWS, in file order (types as stored)."""
    if kind == "parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            yield pa.Table.from_batches([batch])
        return
    if kind == "csv":
        # The schema's types for the columns it knows: a bad value fails with the column named.
        options = pa_csv.ConvertOptions(
            column_types={f.name: f.type for f in schema.ARROW_SCHEMA}, strings_can_be_null=True
        )
        read_options = pa_csv.ReadOptions(block_size=BLOCK_BYTES)
        stream = pa_csv.open_csv(path, read_options=read_options, convert_options=options)
    else:
        read_schema = pa.schema([f.with_nullable(True) for f in schema.ARROW_SCHEMA])
        stream = pa_json.open_json(
            path,
            read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pa_json.ParseOptions(explicit_schema=read_schema, unexpected_field_behavior="ignore"),
        )
    for batch in stream:
        yield pa.Table.from_batches([batch])


def _typed(table: pa.Table, name: str, deployment: str | None) -> pa.Table:
    # A JSON reader gives every schema column; a deployment column with no value means "none".
    if "deployment" in table.column_names and table.column("deployment").null_count == table.num_rows:
        table = table.drop_columns(["deployment"])
    if "deployment" not in table.column_names and deployment is None:
        raise FileRejected(
            f"{name}: no deployment column, and the name says neither 'provisioned' nor 'serverless'; "
            "add a deployment column or rename the file (e.g. provisioned-queries.parquet)"
        )
    try:
        return reader.conform(table, name, deployment)
    except reader.SchemaError as exc:
        raise FileRejected(str(exc)) from None


@dataclass(frozen=True)
class _Provenance:
    source_file: str
    batch_id: str
    ingested_at: datetime


def _split_invalid(typed: pa.Table, first_row: int, origin: _Provenance) -> tuple[pa.Table, pa.Table | None]:
    """(raw rows with provenance, dead letters or None) of one typed batch of the file."""
    suspects = parse.required_violations(typed)
    keep = np.ones(typed.num_rows, dtype=bool)
    keep[suspects] = False
    dead = None
    if suspects.size:
        raw_values, reasons, fields = [], [], []
        for i, row in zip(suspects.tolist(), typed.take(pa.array(suspects)).to_pylist(), strict=True):
            reason, name = parse.required_problem(row) or ("unparseable: invalid required field", None)
            raw_values.append(json.dumps(row, default=str).encode())
            reasons.append(f"{reason} (row {first_row + i})")
            fields.append(name)
        dead = dead_letters.dead_letter_table(
            raw_values=raw_values, reasons=reasons, fields=fields, batch_id=origin.batch_id,
            ingested_at=origin.ingested_at, source_file=origin.source_file,
        )  # fmt: skip
        typed = typed.filter(pa.array(keep))
    n = typed.num_rows
    rows = zone.to_raw_table(
        typed,
        {
            "source_file": pa.repeat(pa.scalar(origin.source_file, pa.string()), n),
            "source_row": pa.array(np.arange(first_row, first_row + len(keep), dtype=np.int64)[keep]),
            "batch_id": pa.repeat(pa.scalar(origin.batch_id, pa.string()), n),
            "ingested_at": pa.repeat(pa.scalar(origin.ingested_at, schema.TIMESTAMP), n),
        },
    )
    return rows, dead


# --- ingesting one file ------------------------------------------------------------------------


def ingest_file(
    path: Path,
    *,
    raw_dir: Path,
    dead_letter_dir: Path,
    landing_dir: Path,
    batch_id: str,
    max_file_bytes: int = zone.DEFAULT_MAX_FILE_BYTES,
) -> Ingested:
    """Write one landing file into the raw zone and move it to processed/.

    A bad file moves to rejected/ with a `.error.txt` beside it, and FileRejected is raised.
    """
    try:
        return _ingest(path, raw_dir, dead_letter_dir, landing_dir, batch_id, max_file_bytes)
    except FileRejected as exc:
        reject(path, landing_dir, str(exc))
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:  # unreadable: truncated, not what it says
        message = f"{path.name}: cannot be read as {FORMATS.get(path.suffix.lower(), 'a known format')}: {exc}"
        reject(path, landing_dir, message)
        raise FileRejected(message) from exc


def _ingest(
    path: Path, raw_dir: Path, dead_dir: Path, landing_dir: Path, batch_id: str, max_file_bytes: int
) -> Ingested:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise FileRejected(f"{path.name}: unsupported file type {path.suffix!r}; use {', '.join(FORMATS)}")
    started = time.monotonic()
    sha8 = _sha8(path)
    group = "landing-" + re.sub(r"[^A-Za-z0-9._-]", "_", path.stem) + f"-{sha8}"
    result = Ingested(path, path, f"{path.name}@{sha8}")
    origin = _Provenance(result.source_file, batch_id, datetime.now(UTC).replace(tzinfo=None))
    deployment = reader.infer_deployment(path.name)

    writer = zone.RawZoneWriter(
        raw_dir, lambda info: f"{info.group}-{info.seq}.parquet" if info.seq else f"{info.group}.parquet",
        max_file_bytes=max_file_bytes, max_open_parts=128,
    )  # fmt: skip
    dead: list[pa.Table] = []
    try:
        for table in _batches(path, kind):
            rows, bad = _split_invalid(_typed(table, path.name, deployment), result.rows_in_file, origin)
            result.rows_in_file += table.num_rows
            if bad is not None:
                dead.append(bad)
                result.summary.dead_letters.update(dead_letters.kinds(bad))
            result.summary.keep_preview(rows)
            writer.write(rows, group)
        if result.rows_in_file and sum(result.summary.dead_letters.values()) == result.rows_in_file:
            kinds = ", ".join(f"{k} {n}" for k, n in result.summary.dead_letters.most_common())
            raise FileRejected(f"{path.name}: not one of its {result.rows_in_file} rows is valid ({kinds})")
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
    result.moved_to = _move(path, landing_dir / PROCESSED, sha8)
    result.summary.seconds = time.monotonic() - started
    return result


def _move(path: Path, folder: Path, sha8: str) -> Path:
    """Move a file into `folder` durably; a different file of the same name there is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists() and _sha8(target) != sha8:
        target = folder / f"{path.stem}-{sha8}{path.suffix}"
    if path.resolve() != target.resolve():
        shutil.move(str(path), target)
    fsync_dir(folder)
    fsync_dir(path.parent)
    return target


def reject(path: Path, landing_dir: Path, message: str) -> Path | None:
    """Move a bad file to rejected/ and write `<name>.error.txt` beside it saying why."""
    if not path.exists():
        return None
    target = _move(path, landing_dir / REJECTED, _sha8(path))
    error = target.with_name(target.name + ".error.txt")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    error.write_text(f"{message}\n\nrejected at {when} from {path}\n")
    return target


# --- the Dagster asset -------------------------------------------------------------------------


class LandingConfig(dg.Config):
    """Run config of `landing_queries` (the landing sensor sets `path`)."""

    path: str = ""  # one file; empty: every file waiting in the landing folder
    max_file_mb: int = zone.DEFAULT_MAX_FILE_BYTES >> 20


@dg.asset(
    key="landing_queries",
    group_name="raw",
    kinds={"parquet", "csv"},
    description="Redset files dropped into the landing folder (parquet, csv, ndjson), in the raw zone "
    "with source_file set; processed files move to landing/processed/, bad ones to landing/rejected/.",
)
def landing_queries(context: dg.AssetExecutionContext, config: LandingConfig) -> dg.MaterializeResult:
    landing_dir = settings.landing_dir()
    zone.remove_stale_temp_files(settings.raw_dir())
    files = [Path(config.path)] if config.path else waiting_files(landing_dir)
    summary = WriteSummary()
    ingested: list[Ingested] = []
    rejected: dict[str, str] = {}
    for path in files:
        if not path.exists():
            done = landing_dir / PROCESSED / path.name
            if done.exists():
                context.log.info(f"{path.name} was already ingested ({done}); nothing to do")
                continue
            raise dg.Failure(description=f"{path}: no such file in the landing folder or in {PROCESSED}/")
        try:
            result = ingest_file(
                path,
                raw_dir=settings.raw_dir(),
                dead_letter_dir=settings.dead_letter_dir(),
                landing_dir=landing_dir,
                batch_id=context.run.run_id,
                max_file_bytes=config.max_file_mb << 20,
            )
        except FileRejected as exc:
            context.log.error(f"rejected {path.name}: {exc}")
            rejected[path.name] = str(exc)
            continue
        context.log.info(
            f"{path.name}: {result.summary.rows:,} rows, {sum(result.summary.dead_letters.values()):,} dead letters "
            f"-> {result.moved_to}"
        )
        ingested.append(result)
        summary.merge(result.summary)

    metadata = {
        **summary.metadata(),
        "files_ingested": dg.MetadataValue.json([r.source_file for r in ingested]),
        "rows_in_files": dg.MetadataValue.int(sum(r.rows_in_file for r in ingested)),
        "rejected_files": dg.MetadataValue.json(rejected),
        "batch_id": dg.MetadataValue.text(context.run.run_id),
    }
    if rejected and not ingested:
        raise dg.Failure(
            description="rejected: " + "; ".join(rejected.values()) + f" (see {landing_dir / REJECTED})",
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


ingest_landing_file_job = dg.define_asset_job(
    "ingest_landing_file_job",
    selection=[landing_queries],
    description="Ingest one landing file (path in run config) into the raw zone (started by landing_file_sensor).",
)
