"""Helpers of the dbt tests: write raw-zone files, run the dbt assets through Dagster, read results.

Each test points REDSET_RAW_DIR at its own temporary folder and REDSET_WAREHOUSE at its pytest
process's warehouse file, emptied for it (see `dbt_paths`), so dbt never shares a DuckDB file with
another test or another engineer's run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from worker_warehouse import WAREHOUSE_NAME, worker_warehouse

from pipeline_assets import schema, settings
from pipeline_assets.orchestration.sensors import RANGE_END_TAG, RANGE_START_TAG
from pipeline_assets.raw import zone, zone_rows

__all__ = ["RANGE_END_TAG", "RANGE_START_TAG"]  # re-exported for the tests

# The date-partitioned dbt tables whose rows belong to one arrival date (daily_table_ingest_gaps
# also rewrites rows of other dates by key, so tests comparing days leave it out).
DAILY_MARTS = (
    "clean_queries",
    "quarantine_queries",
    "query_metrics",
    "compile_metrics",
    "flattened_table_access",
    "stress_index",
    "daily_user_activity",
    "daily_longest_compiles",
)


@dataclass(frozen=True)
class DbtPaths:
    raw_dir: Path
    warehouse: Path
    dead_dir: Path


def dbt_paths(monkeypatch: pytest.MonkeyPatch, root: Path) -> DbtPaths:
    """A private raw zone under `root` and an empty warehouse (`worker_warehouse`), set in the
    environment for this test."""
    paths = DbtPaths(raw_dir=root / "raw", warehouse=worker_warehouse(), dead_dir=root / "dead_letters")
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    paths.dead_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("REDSET_DATA_DIR", str(root))
    monkeypatch.setenv("REDSET_RAW_DIR", str(paths.raw_dir))
    monkeypatch.setenv("REDSET_WAREHOUSE", str(paths.warehouse))
    monkeypatch.setenv("REDSET_DEAD_LETTER_DIR", str(paths.dead_dir))
    monkeypatch.setenv("REDSET_ALERT_LOG", str(root / "alerts.log"))
    return paths


def zones_on_storage(monkeypatch: pytest.MonkeyPatch, paths: DbtPaths, storage: str | None) -> tuple[Path | str, Path | str]:
    """(raw zone, dead letters) of a test that also runs with its zones on S3 (conftest's
    zone_storage): there, under REDSET_STORAGE_URL rather than dbt_paths' folders."""
    if not storage:
        return paths.raw_dir, paths.dead_dir
    for variable in ("REDSET_RAW_DIR", "REDSET_DEAD_LETTER_DIR"):
        monkeypatch.delenv(variable)
    return settings.zone_url("raw"), settings.zone_url("dead_letters")


def park(monkeypatch: pytest.MonkeyPatch, paths: DbtPaths) -> DbtPaths:
    """`paths` with the warehouse moved from the process's file into the folder of its raw zone, for a
    fixture that outlives one test: the next test's dbt_paths empties the process's file."""
    parked = DbtPaths(raw_dir=paths.raw_dir, warehouse=paths.raw_dir.parent / WAREHOUSE_NAME, dead_dir=paths.dead_dir)
    for name in (WAREHOUSE_NAME, f"{WAREHOUSE_NAME}.wal"):  # a WAL only if a writer did not close it
        if (paths.warehouse.parent / name).exists():
            os.replace(paths.warehouse.parent / name, parked.warehouse.parent / name)
    monkeypatch.setenv("REDSET_WAREHOUSE", str(parked.warehouse))
    return parked


_built_once: dict[str, Path] = {}


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[DbtPaths], None]) -> Path:
    """The folder (raw zone, warehouse) that `build` fills, made once per pytest process for each
    `name` and shared by the tests that start from it: each takes its own copy (`copy_built`).
    `build` runs with settings pointed at the folder (dbt_paths), undone afterwards."""
    if name not in _built_once:
        root = tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as mp:
            paths = dbt_paths(mp, root)
            build(paths)
            park(mp, paths)
        _built_once[name] = root
    return _built_once[name]


def copy_built(source: Path, monkeypatch: pytest.MonkeyPatch, root: Path) -> DbtPaths:
    """A private copy of a `built_once` folder at `root`, set in the environment like dbt_paths.
    Its tables are the build's; its staging views still read the shared raw zone until dbt
    builds here (every build re-creates them)."""
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("*.tmp", "alerts.log", f"{WAREHOUSE_NAME}*"))
    paths = dbt_paths(monkeypatch, root)
    shutil.copyfile(source / WAREHOUSE_NAME, paths.warehouse)
    return paths


# Rows of 2024-03-01..04 for the incremental tests: the first three days are built as one range
# (`first_days_built`), then the tests bring the fourth.
INCREMENTAL_NEW_DAY = date(2024, 3, 4)


def incremental_rows() -> tuple[pa.Table, pa.Table]:
    """Generated rows (raw columns) before INCREMENTAL_NEW_DAY, and of that day."""
    import pyarrow.compute as pc

    from pipeline_assets.source import generator

    rows = generator.generate(rows=4000, seed=7, deployment="both", start=date(2024, 3, 1), days=4)
    rows = rows.select(list(schema.COLUMN_NAMES))
    days = pc.cast(rows.column("arrival_timestamp"), pa.date32())
    new_day = pa.scalar(INCREMENTAL_NEW_DAY, pa.date32())
    return rows.filter(pc.less(days, new_day)), rows.filter(pc.equal(days, new_day))


def first_days_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """incremental_rows()'s earlier days in the raw zone (one Kafka batch) and built by the daily
    models as the range 2024-03-01..03: built once, for every test that starts from it."""

    def build(paths: DbtPaths) -> None:
        from pipeline_assets.warehouse.dbt_assets import dbt_daily_models

        old, _ = incremental_rows()
        write_raw_file(paths.raw_dir, kafka_rows(old.to_pylist(), 0, "b1", datetime(2024, 3, 4, 0, 5)),
                       "redset.queries-p0-o0.parquet")  # fmt: skip
        with dg.instance_for_test() as instance:
            result = materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", "2024-03-03"), instance=instance)
        assert result.success

    return built_once(tmp_path_factory, "first-days-built", build)


# The raw-zone columns with every column nullable: the raw dump never writes a NULL key, but dbt
# must still quarantine one (from any other writer), so tests need to be able to write it.
NULLABLE_RAW_SCHEMA = pa.schema([field.with_nullable(True) for field in schema.RAW_SCHEMA])


def raw_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts with any subset of schema.RAW_SCHEMA's columns; the rest NULL) as a raw table."""
    unknown = {name for row in rows for name in row} - set(schema.RAW_SCHEMA.names)
    if unknown:
        raise ValueError(f"not raw-zone columns: {sorted(unknown)}")
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in schema.RAW_SCHEMA.names} for row in rows], schema=NULLABLE_RAW_SCHEMA
    )


def kafka_rows(rows: list[dict], first_offset: int, batch: str, ingested: datetime) -> list[dict]:
    """Source rows as delivered by the dump: one Kafka partition, offsets from `first_offset`."""
    return [
        dict(
            row,
            kafka_topic="redset.queries",
            kafka_partition=0,
            kafka_offset=first_offset + i,
            kafka_timestamp=ingested,
            kafka_key=schema.message_key(row["deployment"], row["instance_id"]),
            batch_id=batch,
            ingested_at=ingested,
        )
        for i, row in enumerate(rows)
    ]


def write_raw_file(raw_dir: Path, rows: Sequence[Mapping[str, Any]], name: str) -> list[Path]:
    """Write rows as raw-zone Parquet: one file called `name` in each arrival_date folder touched."""
    written = []
    for day, part in zone_rows.split_by_arrival_date(raw_table(rows)):
        path = zone.date_dir(raw_dir, day) / name
        zone.write_table_atomically(part, path)
        written.append(path)
    return written


def write_dead_letters(dead_dir: Path, topic: str, offsets: Sequence[int], name: str, partition: int = 0) -> Path:
    """Dead letters (reason bad_json) for `offsets` of one Kafka partition, as one file `name`."""
    from pipeline_assets.raw import dead_letters

    n = len(offsets)
    kafka = pa.table(
        {
            "kafka_topic": pa.array([topic] * n, pa.string()),
            "kafka_partition": pa.array([partition] * n, pa.int32()),
            "kafka_offset": pa.array(offsets, pa.int64()),
            "kafka_timestamp": pa.nulls(n, schema.TIMESTAMP),
            "kafka_key": pa.nulls(n, pa.string()),
        }
    )
    table = dead_letters.dead_letter_table(
        raw_values=[b"{"] * n, reasons=["bad_json: test"] * n, fields=[None] * n, batch_id="dead",
        ingested_at=datetime(2024, 3, 3), kafka=kafka,
    )  # fmt: skip
    dead_letters.write(table, dead_dir, name)
    return dead_dir / name


def materialize_dbt(
    assets: Iterable[dg.AssetsDefinition],
    *,
    partition: str | None = None,
    partition_range: tuple[str, str] | None = None,
    full_refresh: bool = False,
    instance: dg.DagsterInstance | None = None,
    checks: Iterable[dg.AssetChecksDefinition] = (),
    selection: Sequence[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise dbt assets in process, as a run for one partition or a range of partitions,
    with `checks` (asset checks defined outside dbt) run after them; `selection`: only these
    models (asset keys) and their tests."""
    from pipeline_assets.warehouse.dbt_assets import dbt_resource
    from pipeline_assets.warehouse.resource import warehouse_resource

    assets = list(assets)
    tags = {RANGE_START_TAG: partition_range[0], RANGE_END_TAG: partition_range[1]} if partition_range else None
    config = {"ops": {a.op.name: {"config": {"full_refresh": full_refresh}} for a in assets}}
    return dg.materialize(
        [*assets, *checks],
        partition_key=partition,
        tags=tags,
        run_config=config,
        resources={"dbt": dbt_resource, "warehouse": warehouse_resource()},
        instance=instance,
        selection=None if selection is None else [dg.AssetKey(name) for name in selection],
    )


def reasons_in_pandas(staged: pd.DataFrame) -> pd.Series:
    """Each staged row's quarantine reason (NA: valid), from the rules as the issue states them and
    the dbt var plausible_bounds: an independent check of dbt_project/macros/rules.sql."""
    from pipeline_assets.warehouse.dbt_assets import project_var

    durations = staged[["compile_duration_ms", "queue_duration_ms", "execution_duration_ms"]]
    max_ids = int(os.environ.get("REDSET_MAX_TABLE_IDS", "10000"))  # var max_table_ids and its default
    start, end = pd.Timestamp(settings.span_start()), pd.Timestamp(settings.span_end())
    rules = {  # in the documented order: the first broken rule is the reason
        "null_key": staged[["deployment", "instance_id", "query_id"]].isna().any(axis=1),
        "unknown_deployment": ~staged.deployment.isin(schema.DEPLOYMENTS),
        "negative_duration": (durations < 0).any(axis=1),
        "arrival_out_of_span": (staged.arrival_timestamp < start) | (staged.arrival_timestamp >= end)
        | (staged.arrival_timestamp > staged.kafka_timestamp.fillna(staged.ingested_at)),
        "unknown_query_type": ~staged.query_type.isin(schema.QUERY_TYPES),
        "cached_without_source": staged.was_cached.eq(True) & staged.cache_source_query_id.isna(),
        "too_many_table_ids": pd.concat(
            [staged[c].str.count(",").add(1).gt(max_ids) for c in ("read_table_ids", "write_table_ids")],
            axis=1,
        ).fillna(False).any(axis=1),
    }
    for column, (low, high) in project_var("plausible_bounds").items():  # NULL passes
        rules[f"implausible_value: {column}"] = staged[column].notna() & ~staged[column].between(low, high)
    reason = pd.Series(pd.NA, index=staged.index, dtype="object")
    for name, broken in rules.items():
        reason = reason.mask(reason.isna() & broken, name)
    return reason


def query(warehouse: Path, sql: str) -> list[tuple]:
    """Rows of a query against the warehouse, read-only (the connection is closed afterwards)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def table(warehouse: Path, name: str, order_by: str | None = None) -> list[dict[str, Any]]:
    """A whole table as dicts, in a stable order."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(f"select * from {name}" + (f" order by {order_by}" if order_by else " order by all"))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)
