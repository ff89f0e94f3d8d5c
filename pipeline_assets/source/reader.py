"""Read Redset parquet (a local file, a folder of part files, or an https URL) in arrival order.

Rows come out as pyarrow RecordBatches typed to schema.ARROW_SCHEMA (by conform.conform), with
a `deployment` column. A URL is downloaded once to the cache (fetch.download). DuckDB does the
reading: it sorts out of core (spilling to a temp folder under a memory limit), so a
400-million-row file streams through a few hundred MB of RAM.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_assets import schema, settings
from pipeline_assets.source import fetch
from pipeline_assets.source.conform import SchemaError, check_columns, conform


def infer_deployment(source: str | Path) -> str | None:
    """'provisioned' or 'serverless' from the nearest path part that names exactly one of them."""
    path = urlparse(str(source)).path if fetch.is_url(source) else str(source)
    for part in reversed(re.split(r"[\\/]", path)):
        found = [d for d in schema.DEPLOYMENTS if d in part.lower()]
        if len(found) == 1:
            return found[0]
    return None


def parquet_files(source: str | Path) -> list[Path]:
    """The parquet files behind a local source: a file, or every *.parquet under a folder
    (skipping hidden and `_`-prefixed files that writers use while a file is incomplete)."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not files:
            raise FileNotFoundError(f"{path}: no parquet files in this folder")
        return files
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return [path]


def _check_files(files: list[Path], deployment_known: bool) -> dict[str, pa.DataType]:
    """Column types across `files`; each file is checked alone so an error names the one at fault."""
    types: dict[str, pa.DataType] = {}
    for f in files:
        try:
            stored = {field.name: field.type for field in pq.read_schema(f)}
        except (pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"{f}: not a readable parquet file ({exc})") from exc
        check_columns(stored, str(f), deployment_known=deployment_known)
        for name, type_ in stored.items():
            types.setdefault(name, type_)
    return types


def _ordered_query(
    columns: list[str], instances: Iterable[int] | None, deployment: str | None, limit: int | None
) -> str:
    """SQL over read_parquet($files): rows in arrival order, ties in file order."""
    where = []
    if instances is not None:
        ids = [str(int(i)) for i in instances]
        where.append(f"instance_id IN ({', '.join(ids)})" if ids else "FALSE")
    if deployment is not None:  # validated against schema.DEPLOYMENTS by the caller
        where.append(f"deployment = '{deployment}'")
    return (
        "SELECT " + ", ".join(f'"{c}"' for c in columns)
        + " FROM read_parquet($files, filename = true, file_row_number = true, union_by_name = true)"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY arrival_timestamp, filename, file_row_number"
        + (f" LIMIT {int(limit)}" if limit is not None else "")
    )


def iter_batches(
    source: str | Path,
    *,
    batch_rows: int = 100_000,
    limit: int | None = None,
    instances: Iterable[int] | None = None,
    deployment: str | None = None,
    memory_limit: str = "1GB",
) -> Iterator[pa.RecordBatch]:
    """Rows of `source` in arrival order (ties in file order), typed to schema.ARROW_SCHEMA.

    `source` is a parquet file, a folder of parquet files, or an https URL (downloaded once to
    the cache). `instances` keeps only those instance ids; `limit` stops after that many rows.
    The deployment comes from a `deployment` column when the file has one (then `deployment=`
    keeps only that deployment's rows), else from `deployment=`, else from the path.
    DuckDB sorts within `memory_limit` and spills the rest to a temp folder under the cache.
    """
    if deployment is not None and deployment not in schema.DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {schema.DEPLOYMENTS}, not {deployment!r}")
    name = str(source)
    files = parquet_files(fetch.download(name) if fetch.is_url(source) else source)
    declared = deployment or infer_deployment(name)
    types = _check_files(files, deployment_known=declared is not None)
    columns = [c for c in schema.COLUMN_NAMES if c in types]
    filter_deployment = deployment if "deployment" in types else None
    if limit is not None and limit <= 0:
        return
    sql = _ordered_query(columns, instances, filter_deployment, limit)

    spill_root = settings.data_dir() / "cache" / "duckdb_tmp"
    spill_root.mkdir(parents=True, exist_ok=True)
    # A folder per reader: concurrent DuckDB processes must not share spill files.
    with tempfile.TemporaryDirectory(dir=spill_root) as spill:
        con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill, "threads": 2})
        try:
            batches = con.sql(sql, params={"files": [str(f) for f in files]}).to_arrow_reader(batch_rows)
            for batch in batches:
                table = conform(pa.Table.from_batches([batch]), name, declared)
                yield from table.to_batches(max_chunksize=batch_rows)
        finally:
            con.close()
