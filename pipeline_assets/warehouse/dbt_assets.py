"""The dbt project as Dagster assets.

One translator (translator.py) names every model by its bare name (`leaderboard`), puts it in group
`staging` or `marts`, and wires the dbt sources to the raw assets `raw_queries` / `landing_queries` (through
their `meta.dagster.asset_key`), so lineage runs unbroken from Kafka to the marts.

The models are split as in dagster-open-platform: the ones tagged `daily` (the staging views and
models/marts/daily/) are daily-partitioned and incremental, and a partition run passes its dates to
dbt as REDSET_MIN_DATE / REDSET_MAX_DATE (window_env; the whole mechanism is described in
dbt_project/macros/partition_window.sql); the rest are rebuilt whole from the daily tables. Both
sets run in the `duckdb` pool (limit 1), because DuckDB allows one writing process per file (and on
REDSET_ENGINE=spark, the embedded Derby metastore one dbt process at a time), and hold the
warehouse's writer lock (warehouse/lock.py), which also keeps live mode out meanwhile.
"""

import importlib.metadata
import shutil
import sys
from collections.abc import Iterator
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.core.dbt_event_iterator import DbtEventIterator
from dagster_dbt.errors import DagsterDbtCliRuntimeError
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from packaging import version

from pipeline_assets import settings
from pipeline_assets.spark.master import require_master
from pipeline_assets.warehouse import build_windows, duckdb_limits, parse_state
from pipeline_assets.warehouse.dbt_deadline import max_runtime_seconds, process_deadline, stopped_message
from pipeline_assets.warehouse.lock import warehouse_writer
from pipeline_assets.warehouse.partitions import DATE_FORMAT, daily_partitions
from pipeline_assets.warehouse.translator import translator

DAILY_SELECT = "tag:daily"
POOL = "duckdb"
# dbt's --exclude-resource-type as its environment variable (dbt_env).
UNIT_TESTS_OFF = "unit_test"

dbt_project = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt next to this Python (the venv's), so an unactivated venv works too; on Spark,
    `redset-dbt`: dbt with Spark 4's ANSI mode kept (spark/ansi.py)."""
    name = "redset-dbt" if settings.engine() == "spark" else "dbt"
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


class InstalledDbtCliResource(DbtCliResource):
    """DbtCliResource without its `dbt --version` subprocess at each run's first invocation (seconds
    of CPU: the whole of dbt imported once more): the dbt beside this Python is the installed
    dbt-core, so its version is the package's. tests/test_dbt_release.py keeps the two equal."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version


dbt_resource = InstalledDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


def project_var(name: str) -> Any:
    """A var of dbt_project.yml as written there (for Python that applies the same rules: the
    transform bench's reference SQL, the tests); not rendered, so not for vars holding Jinja."""
    return yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"][name]


class DbtBuildConfig(dg.Config):
    """Run config of the dbt assets."""

    full_refresh: bool = False
    """Rebuild the incremental tables from the whole raw zone (`dbt build --full-refresh`),
    whatever the partition. Needed after a change of a model's columns."""


def window_env(window: dg.TimeWindow | None) -> dict[str, str]:
    """A partition range as REDSET_MIN_DATE / REDSET_MAX_DATE, its first and last day (inclusive;
    empty: no window, every date). What dbt does with them: dbt_project/macros/partition_window.sql."""
    return {
        "REDSET_MIN_DATE": window.start.strftime(DATE_FORMAT) if window else "",
        "REDSET_MAX_DATE": (window.end - timedelta(days=1)).strftime(DATE_FORMAT) if window else "",
    }


# REDSET_ENGINE -> the output of profiles.yml dbt runs against.
TARGETS = {"duckdb": "dev", "spark": "spark"}


def dbt_target() -> str:
    return TARGETS[settings.engine()]


def dbt_env(window: dg.TimeWindow | None) -> dict[str, str]:
    """Environment of the dbt subprocess (it inherits ours):
    - the span, and the partition window (window_env);
    - the absolute warehouse and raw-zone paths as settings resolve them (REDSET_DATA_DIR
      included), instead of the relative defaults in profiles.yml and the sources;
    - the Spark output's master, warehouse folder, metastore, schema, executor size and driver
      address (whatever the engine, so a parse is the same for both);
    - tests run when all their models are built or upstream of the selection ("buildable"), so
      the daily runs skip the all-time marts' relationship tests and the all-time runs keep them;
    - no unit tests (dbt's advice: development and CI only, not every production build; live
      mode's `dbt test` skips them too): `dbt test --select "test_type:unit"` by hand runs them.
    """
    return {
        "REDSET_SPAN_START": settings.span_start().isoformat(),
        "REDSET_SPAN_END": settings.span_end().isoformat(),
        **window_env(window),
        "REDSET_WAREHOUSE": str(settings.warehouse_path()),
        "REDSET_RAW_DIR": settings.zone_url("raw"),  # s3://...: profiles.yml registers s3fs with DuckDB
        "REDSET_SPARK_MASTER": settings.spark_master(),
        "REDSET_SPARK_WAREHOUSE": settings.zone_url("spark_warehouse"),  # a Spark build checks it is local
        "REDSET_SPARK_METASTORE": str(settings.spark_metastore()),
        "REDSET_SPARK_SCHEMA": settings.spark_schema(),
        "REDSET_SPARK_EXECUTOR_MEMORY": settings.spark_executor_memory(),
        "REDSET_SPARK_DRIVER_HOST": settings.spark_driver_host(),
        "REDSET_SPARK_DRIVER_BIND_ADDRESS": settings.spark_driver_bind_address(),
        "DBT_INDIRECT_SELECTION": "buildable",
        "DBT_EXCLUDE_RESOURCE_TYPES": UNIT_TESTS_OFF,
    }


def build_args(full_refresh: bool) -> list[str]:
    """`dbt build` against the engine's target (REDSET_ENGINE)."""
    return ["build", "--target", dbt_target(), *(["--full-refresh"] if full_refresh else [])]


def build(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig) -> Iterator[Any]:
    """`dbt build` of the selected models and their tests, with row counts and column schemas
    (DuckDB only: on Spark they would open a SparkSession in this process, whose embedded Derby
    metastore would then lock the next dbt out)."""
    spark = settings.engine() == "spark"
    if spark:
        require_master(settings.spark_master())  # at once, not after a SparkSession's minutes of retries
        settings.raw_dir()  # Spark reads the raw zone on local disk only so far: s3:// is a StorageError naming it
        settings.spark_warehouse().parent.mkdir(parents=True, exist_ok=True)
        max_temp, limits = 0, {}
    else:
        settings.warehouse_path().parent.mkdir(parents=True, exist_ok=True)
    # A full refresh rebuilds every date; otherwise the window's, in bounded windows (build_windows.py).
    partitioned = context.assets_def.partitions_def is not None and not config.full_refresh
    args = build_args(config.full_refresh)
    windows = [None]
    if partitioned:
        windows = build_windows.time_windows(context.partition_time_window, settings.zone_url("raw"), settings.dbt_window_rows())
    first = dbt_env(windows[0])
    days = f" {first['REDSET_MIN_DATE']}..{dbt_env(windows[-1])['REDSET_MAX_DATE']}" if first["REDSET_MIN_DATE"] else ""
    holder = f"dbt {' '.join(args)}{days} (run {context.run_id[:8]})"
    held = build_windows.CheckResults()
    with warehouse_writer(holder, log=context.log):
        if not spark:  # before dbt starts: no room for the spill cap fails now
            duckdb_limits.clear_stale_spill(context.log)
            max_temp = duckdb_limits.check_temp_space()
            limits = duckdb_limits.dbt_env(max_temp)
        for i, window in enumerate(windows, start=1):
            env = dbt_env(window) | limits
            label = f"{env['REDSET_MIN_DATE']}..{env['REDSET_MAX_DATE']}"
            with settings.environment(env):  # dbt inherits the env
                profile = parse_state.profile_key(dbt_target())
                target_path = parse_state.new_target_path(f"{context.op.name}-{context.run_id[:7]}")
                parse_state.seed(target_path, profile)
                invocation = dbt.cli(args, context=context, target_path=target_path)
                with process_deadline(invocation.process, max_runtime_seconds()) as expired:
                    try:
                        events = invocation.stream()
                        if i < len(windows):
                            models, tests = held.hold(events, label)
                            context.log.info(f"window {i}/{len(windows)} {label}: {models} models, {tests} tests built")
                            continue
                        if not spark:
                            events = with_table_metadata(events, invocation)
                        yield from held.merge(events)
                    except DagsterDbtCliRuntimeError as error:
                        if expired():
                            raise dg.Failure(description=stopped_message(f"dbt {' '.join(args)} {label}")) from error
                        note = None if spark else duckdb_limits.explain_temp_cap(error, max_temp)
                        where = f"window {i}/{len(windows)} {label}: " if len(windows) > 1 else ""
                        if note is None and not where:
                            raise
                        raise dg.Failure(description=f"{where}{note or ''}\n\n{error}".strip()) from error
                    finally:
                        release_warehouse(invocation)
                        parse_state.keep(invocation.target_path, profile)
                        if i < len(windows):
                            shutil.rmtree(invocation.target_path, ignore_errors=True)
    # Each invocation's folder under dbt_project/target (~4 MB) is kept only when it failed (dbt.log).
    shutil.rmtree(invocation.target_path, ignore_errors=True)


def with_table_metadata(events: Iterator[Any], invocation: DbtCliInvocation) -> Iterator[Any]:
    """The events with row counts and column schemas, fetched once dbt has ended. dagster-dbt waits
    for a DuckDB build's end anyway (one writer per file), but in a worker thread that two of its
    threads poll without sleeping (dagster._core.utils.imap): a core burnt, and the thread reading
    dbt's events starved of the GIL, for the whole build. Read here first, nothing polls."""
    done, error = [], None
    try:
        done.extend(events)
    except DagsterDbtCliRuntimeError as exc:  # raised after its events, as dagster-dbt does
        error = exc
    fetched = DbtEventIterator(iter(done), invocation).fetch_row_counts()
    yield from fetched.fetch_column_metadata(with_column_lineage=False)
    if error is not None:
        raise error


def parse_project() -> None:
    """`dbt parse`: the manifest the asset definitions below are read from. It runs in the
    environment the runs give dbt, so their first invocation can use its partial-parse state."""
    with settings.environment(dbt_env(None)):
        dbt_resource.cli(["parse", "--quiet", "--target", dbt_target()], target_path=dbt_project.target_path).wait()


# `make dbt-parse` (for `make test` and `make demo`) builds the manifest through this. Not
# prepare_if_dev(): under `dagster dev` every run worker would re-parse at once (manifest lock).
if not dbt_project.manifest_path.exists():
    # A fresh clone without `make dbt-parse` (e.g. a bare `pytest`): parse once, now.
    parse_project()


def release_warehouse(invocation: DbtCliInvocation) -> None:
    """Row counts and column schemas are read through a dbt adapter in this process, and
    dbt-duckdb keeps one DuckDB database open per process: close it, or the next dbt process (or
    any reader) finds the file locked while this process lives on (in-process runs, tests).

    dbt-duckdb has no documented call for it: `cleanup_connections()` closes dbt's connections but
    not the shared database, and `close_all_connections()` only drops its reference (closed when
    garbage-collected). `env()` is the accessor its own adapter uses; tests/test_dbt_release.py
    fails if an upgrade changes this."""
    if invocation.adapter is not None:
        invocation.adapter.cleanup_connections()
    close_duckdb_database()


def close_duckdb_database() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process, if any (see release_warehouse)."""
    try:
        environment = DuckDBConnectionManager.env()
    except Exception as exc:  # dbt-duckdb raises a bare Exception when this process opened nothing
        if "before creation" not in str(exc):
            raise
    else:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY_SELECT,
    dagster_dbt_translator=translator,
    partitions_def=daily_partitions,
    # A range of days runs in one step: dbt invocations of bounded windows (build_windows.py).
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=POOL,
    name="dbt_daily_models",
)
def dbt_daily_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    yield from build(context, dbt, config)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=DAILY_SELECT,
    dagster_dbt_translator=translator,
    pool=POOL,
    name="dbt_all_time_models",
)
def dbt_all_time_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    yield from build(context, dbt, config)
