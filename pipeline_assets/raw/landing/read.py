"""Reading one landing file (parquet, csv or ndjson) as batches typed to schema.ARROW_SCHEMA.

Typing is conform(), the same as the Kafka producer's reader: a timestamp with a zone
offset ("+02:00", "Z") becomes UTC in every format, as on the Kafka path. What makes a whole
file bad raises FileRejected naming the file: an unsupported suffix, a missing required
column, a column of the wrong type, or an unknown deployment.
"""

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from pipeline_assets import schema
from pipeline_assets.source import reader
from pipeline_assets.source.conform import SchemaError, conform

FORMATS = {".parquet": "parquet", ".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson"}
BATCH_ROWS = 100_000
BLOCK_BYTES = 16 << 20
# Timestamps are read as text and typed by conform(), which converts a zone offset to UTC (the
# CSV and JSON readers refuse an offset for a zone-less column). The other types are the
# schema's, so a bad value fails with its column named.
_TEXT_TYPES = {
    f.name: pa.string() if pa.types.is_timestamp(f.type) else f.type for f in schema.ARROW_SCHEMA
}


class FileRejected(Exception):
    """The whole file is unusable; the message says why, naming the file."""


def file_format(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise FileRejected(f"{path.name}: unsupported file type {path.suffix!r}; use {', '.join(FORMATS)}")
    return kind


def typed_batches(path: Path) -> Iterator[tuple[pa.Table, int]]:
    """(rows typed to schema.ARROW_SCHEMA, rows in the file before them), BATCH_ROWS at most, in file order."""
    deployment = reader.infer_deployment(path.name)
    first_row = 0
    for table in _batches(path, file_format(path)):
        yield _typed(table, path.name, deployment), first_row
        first_row += table.num_rows


def _batches(path: Path, kind: str) -> Iterator[pa.Table]:
    """The file's rows as Arrow tables of at most BATCH_ROWS, in file order (types as stored)."""
    if kind == "parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            yield pa.Table.from_batches([batch])
        return
    if kind == "csv":
        options = pa_csv.ConvertOptions(column_types=_TEXT_TYPES, strings_can_be_null=True)
        read_options = pa_csv.ReadOptions(block_size=BLOCK_BYTES)
        stream = pa_csv.open_csv(path, read_options=read_options, convert_options=options)
    else:
        read_schema = pa.schema([pa.field(name, type_) for name, type_ in _TEXT_TYPES.items()])
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
        return conform(table, name, deployment)
    except SchemaError as exc:
        raise FileRejected(str(exc)) from None
