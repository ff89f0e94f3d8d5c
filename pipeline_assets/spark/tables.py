"""The Spark engine's tables, read and written without Spark.

On Spark every dbt table is plain Parquet (file_format parquet, no Delta) in the warehouse folder:

    <REDSET_SPARK_WAREHOUSE>/<schema>.db/<table>/part-*.parquet
    <REDSET_SPARK_WAREHOUSE>/<schema>.db/<table>/arrival_date=2024-03-01/part-*.parquet   (daily models)

so an in-memory DuckDB with one view per table folder reads them as `main.<table>`, the names the
DuckDB warehouse has: the serving snapshot, the offsets check and the forecast asset run unchanged
and need no SparkSession (whose embedded Derby metastore would lock dbt out while it lives).

Limits: a dbt view has no files (dbt's views are staging only, and nothing here reads them); a
partitioned table without rows has no file at all, so no schema, and is not listed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    import pandas as pd


def schema_dir(warehouse: Path, schema: str) -> Path:
    return warehouse / f"{schema}.db"


def parquet_files(table_dir: Path) -> list[Path]:
    """The table's data files; not Spark's hidden checksums, `_SUCCESS`, nor an unfinished
    write's `_temporary/` or `.spark-staging-*/` folders."""
    return sorted(
        path
        for path in table_dir.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in path.relative_to(table_dir).parts)
    )


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def tables(warehouse: Path, schema: str) -> dict[str, list[Path]]:
    """Table name -> its Parquet files, for every table folder of `schema` that holds any."""
    folder = schema_dir(warehouse, schema)
    found = {}
    for table_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        if table_dir.is_dir() and not table_dir.name.startswith((".", "_")):
            files = parquet_files(table_dir)
            if files:
                found[table_dir.name] = files
    return found


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def connect(warehouse: Path, schema: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with a view `main.<table>` over each table's files as they are now
    (Hive partition folders become columns, arrival_date a DATE). Spark writes its timestamps as
    UTC instants, which DuckDB reads as TIMESTAMP WITH TIME ZONE: the views give them as the plain
    UTC TIMESTAMP the DuckDB warehouse has, whatever this machine's time zone."""
    with duckdb.connect(":memory:") as con:
        for name, files in tables(warehouse, schema).items():
            scan = f"read_parquet({_sql_list(files)}, hive_partitioning = true)"
            columns = [
                f"timezone('UTC', {_quote(column)}) AS {_quote(column)}" if dtype == "TIMESTAMP WITH TIME ZONE"
                else _quote(column)
                for column, dtype, *_ in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
            ]  # fmt: skip
            con.execute(f"CREATE VIEW main.{_quote(name)} AS SELECT {', '.join(columns)} FROM {scan}")
        yield con


def write_table(warehouse: Path, schema: str, name: str, select_sql: str, frames: dict[str, pd.DataFrame]) -> int:
    """Replace table folder `name` with one Parquet file of `select_sql` (run by an in-memory DuckDB
    that sees `frames` by name). The new folder is written in full beside the old one, then swapped
    in by two renames (the `duckdb` pool keeps the snapshot from reading in between). Returns the
    rows written."""
    target = schema_dir(warehouse, schema) / name
    staging = target.with_name(f".{name}.{os.getpid()}.new")
    retired = target.with_name(f".{name}.{os.getpid()}.old")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with duckdb.connect(":memory:") as con:
            for frame_name, frame in frames.items():
                con.register(frame_name, frame)
            part = str(staging / "part-00000.parquet").replace("'", "''")
            con.execute(f"COPY ({select_sql}) TO '{part}' (FORMAT parquet, COMPRESSION zstd)")
            rows = con.execute(f"SELECT count(*) FROM read_parquet('{part}')").fetchone()[0]
        if target.exists():
            target.rename(retired)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return int(rows)
