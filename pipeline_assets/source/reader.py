"""Read Redset parquet (a local file, a folder of part files, or an https URL) in arrival order.

Rows come out as pyarrow RecordBatches typed to schema.ARROW_SCHEMA, with a `deployment` column.
DuckDB does the reading: it sorts out of core (spilling to a temp folder under a memory limit),
so a 400-million-row file streams through a few hundred MB of RAM.

conform() is the one place that turns whatever a file stored (0/1 booleans, int or float
megabytes, timestamps in any unit or zone or as ISO strings) into the schema's types; a zone
offset becomes UTC, as on the Kafka path. The landing-file ingest uses it too.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_assets import schema, settings
from pipeline_assets.raw.arrow_json import utc_timestamps


class SchemaError(ValueError):
    """A source lacks required columns or stores a column in a type we cannot read as Redset's."""


# ----------------------------------------------------------------------------- typing


def _kind(type_: pa.DataType) -> str:
    """A coarse family for a column type, which decides how it converts."""
    if pa.types.is_null(type_):
        return "null"
    if pa.types.is_dictionary(type_):
        return _kind(type_.value_type)
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_):
        return "int"
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "float"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return "string"
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        return "time"
    return str(type_)


# Which stored families each target family accepts (values are checked in _convert).
_ACCEPTS: dict[str, set[str]] = {
    "int": {"int", "float", "null"},  # pandas stores nullable ints as float
    "float": {"int", "float", "null"},
    "bool": {"bool", "int", "string", "null"},  # some copies store 0/1
    "string": {"string", "int", "null"},  # a CSV of single table ids reads as int
    "time": {"time", "string", "null"},  # ISO strings from CSV / JSON
}


def _type_problems(types: dict[str, pa.DataType]) -> list[str]:
    """'column (stored, expected)' for each present column whose type cannot be read."""
    problems = []
    for name, stored in types.items():
        column = schema.BY_NAME.get(name)
        if column is None:
            continue
        if _kind(stored) not in _ACCEPTS[_kind(column.type)]:
            problems.append(f"{name} ({stored}, expected {column.type})")
    return problems


def check_columns(
    types: dict[str, pa.DataType], source_name: str, *, deployment_known: bool
) -> None:
    """Raise SchemaError naming `source_name` and every missing or mistyped column."""
    needed = [n for n in schema.REQUIRED if not (n == "deployment" and deployment_known)]
    missing = [n for n in needed if n not in types]
    wrong = _type_problems(types)
    if not (missing or wrong):
        return
    parts = []
    if missing:
        hint = ""
        if "deployment" in missing:
            hint = " (pass deployment= or put 'provisioned'/'serverless' in the path)"
        parts.append("missing required columns: " + ", ".join(missing) + hint)
    if wrong:
        parts.append("wrong types: " + ", ".join(wrong))
    raise SchemaError(f"{source_name}: " + "; ".join(parts))


def _integral(values: pa.ChunkedArray) -> bool:
    finite = pc.drop_null(values)
    return len(finite) == 0 or pc.all(pc.equal(finite, pc.floor(finite))).as_py()


_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}


def _convert(values: pa.ChunkedArray, target: pa.DataType, name: str, source_name: str) -> pa.ChunkedArray:
    """One column to the schema's type, or a SchemaError saying which values do not fit."""
    stored = _kind(values.type)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_floating(values.type) and values.null_count < len(values):
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)  # pandas' NULL
    if values.type == target:
        return values
    if stored == "null":
        return pa.chunked_array([pa.nulls(len(values), target)])

    def bad(what: str) -> SchemaError:
        return SchemaError(f"{source_name}: wrong values in {name}: {what}")

    wanted = _kind(target)
    if wanted == "bool" and stored == "int":
        distinct = set(pc.unique(pc.drop_null(values)).to_pylist())
        if not distinct <= {0, 1}:
            raise bad(f"expected 0/1 booleans, found {sorted(distinct)[:5]}")
        return pc.not_equal(values, 0)
    if wanted == "bool" and stored == "string":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        distinct = set(pc.unique(pc.drop_null(lowered)).to_pylist())
        if not distinct <= _TRUE | _FALSE:
            raise bad(f"expected true/false, found {sorted(distinct)[:5]}")
        truth = pc.is_in(lowered, value_set=pa.array(sorted(_TRUE)))
        return pc.if_else(pc.is_null(lowered), pa.scalar(None, pa.bool_()), truth)
    if wanted == "int" and stored == "float" and not _integral(values):
        raise bad("expected whole numbers, found fractions")
    safe = True
    if pa.types.is_timestamp(values.type):
        # Keep the UTC wall time (Redset has no zones); drop sub-microsecond digits.
        values = values.cast(pa.timestamp(values.type.unit))
        safe = values.type.unit != "ns"
    try:
        if wanted == "time" and stored == "string":
            return utc_timestamps(values)  # as the Kafka path: "+02:00" or "Z" becomes UTC
        return values.cast(target, safe=safe)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise bad(str(exc)) from exc


def conform(table: pa.Table, source_name: str, deployment: str | None = None) -> pa.Table:
    """`table` typed to schema.ARROW_SCHEMA: columns in schema order, extra columns dropped,
    optional columns the source lacks filled with NULL.

    `deployment` fills the deployment column when the table has none (a real Redset file),
    and its NULLs when it has one. Raises SchemaError naming `source_name` and the
    missing or mistyped columns.
    """
    if deployment is not None and deployment not in schema.DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {schema.DEPLOYMENTS}, not {deployment!r}")
    types = {f.name: f.type for f in table.schema}
    check_columns(types, source_name, deployment_known=deployment is not None)
    arrays = []
    for field in schema.ARROW_SCHEMA:
        if field.name in types:
            arrays.append(_convert(table[field.name], field.type, field.name, source_name))
            if field.name == "deployment" and deployment is not None:
                arrays[-1] = pc.fill_null(arrays[-1], deployment)
        elif field.name == "deployment":
            arrays.append(pa.chunked_array([pa.repeat(pa.scalar(deployment, pa.string()), table.num_rows)]))
        else:
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
    return pa.Table.from_arrays(arrays, schema=schema.ARROW_SCHEMA)


# ----------------------------------------------------------------------------- sources


def infer_deployment(source: str | Path) -> str | None:
    """'provisioned' or 'serverless' from the nearest path part that names exactly one of them."""
    path = urlparse(str(source)).path if _is_url(source) else str(source)
    for part in reversed(re.split(r"[\\/]", path)):
        found = [d for d in schema.DEPLOYMENTS if d in part.lower()]
        if len(found) == 1:
            return found[0]
    return None


def _is_url(source: str | Path) -> bool:
    return str(source).startswith(("https://", "http://"))


def cache_path(url: str) -> Path:
    """Where a downloaded URL lives: settings.data_dir()/cache/<host>/<path>."""
    parsed = urlparse(url)
    return settings.data_dir() / "cache" / parsed.netloc / parsed.path.lstrip("/")


def download(url: str, *, progress: bool = True, chunk_bytes: int = 1 << 20) -> Path:
    """Fetch `url` once into the cache (with a progress bar) and return the local path.

    DuckDB's httpfs extension cannot be installed offline, so we download with requests.
    The file is written under a temporary name and renamed, so an interrupted download is
    never mistaken for a complete one.
    """
    import requests
    from tqdm import tqdm

    target = cache_path(url)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")  # one per process
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length") or 0) or None
            with open(partial, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=f"download {target.name}", disable=not progress
            ) as bar:
                for chunk in response.iter_content(chunk_bytes):
                    out.write(chunk)
                    bar.update(len(chunk))
        if total is not None and partial.stat().st_size != total:
            raise OSError(f"{url}: got {partial.stat().st_size} of {total} bytes")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


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
    files = parquet_files(download(name) if _is_url(source) else source)
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
