"""The dbt project as Dagster assets.

One translator names every model by its bare name (`leaderboard`), puts it in group `staging` or
`marts`, and wires the dbt sources to the raw assets `raw_queries` / `landing_queries` (through
their `meta.dagster.asset_key`), so lineage runs unbroken from Kafka to the marts.

The models are split as in dagster-open-platform: the ones tagged `daily` (the staging views and
models/marts/daily/) are daily-partitioned and incremental, and a partition run passes its dates to
dbt as `--vars {min_date, max_date}`; the rest are rebuilt whole from the daily tables. Both sets
run in the `duckdb` pool (limit 1), because DuckDB allows one writing process per file.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets
from dbt.adapters.duckdb.connections import DuckDBConnectionManager

from pipeline_assets import settings
from pipeline_assets.partitions import DATE_FORMAT, daily_partitions

DAILY_SELECT = "tag:daily"
POOL = "duckdb"

dbt_project = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)
# `make dbt-parse` (a dependency of `make test` and `make demo`) builds the manifest. Not
# prepare_if_dev(): under `dagster dev` every run worker would re-parse at once and time out on
# dbt's manifest lock.
if not dbt_project.manifest_path.exists():
    # A fresh clone without `make dbt-parse` (e.g. a bare `pytest`): parse once, now.
    dbt_project.preparer.prepare(dbt_project)


# The all-time marts follow the daily partitions: rebuilt once a daily partition they read has
# changed and no daily run is still going. Not eager(): that waits until every daily partition
# exists (days without data never will) and builds missing assets before any daily table exists.
AFTER_DAILY_PARTITIONS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after the daily partitions change")


def is_daily(dbt_resource_props: Mapping[str, Any]) -> bool:
    return "daily" in (dbt_resource_props.get("tags") or [])


class RedsetDbtTranslator(DagsterDbtTranslator):
    """Asset keys, groups, partition mappings and automation of the dbt models."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)  # meta.dagster.asset_key
        return dg.AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None  # the raw assets own their group
        return "staging" if "staging" in dbt_resource_props["fqn"] else "marts"

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> dg.PartitionMapping | None:
        # A day's stress index looks back 24 hours, into the previous day's clean rows.
        if dbt_resource_props["name"] == "stress_index" and dbt_parent_resource_props["name"] == "clean_queries":
            return dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0)
        return None

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] == "model" and not is_daily(dbt_resource_props):
            return AFTER_DAILY_PARTITIONS
        return None


translator = RedsetDbtTranslator()


class DbtBuildConfig(dg.Config):
    """Run config of the dbt assets."""

    full_refresh: bool = False
    """Rebuild the incremental tables from the whole raw zone (`dbt build --full-refresh`),
    whatever the partition. Needed after a change of a model's columns."""


def dbt_vars(window: dg.TimeWindow | None) -> dict[str, str]:
    """--vars for dbt: the span always, and the partition window's dates (inclusive) if any."""
    values = {
        "span_start": settings.span_start().isoformat(),
        "span_end": settings.span_end().isoformat(),
    }
    if window is not None:
        values["min_date"] = window.start.strftime(DATE_FORMAT)
        values["max_date"] = (window.end - timedelta(days=1)).strftime(DATE_FORMAT)
    return values


@contextmanager
def dbt_environment() -> Iterator[None]:
    """Environment of the dbt subprocess (it inherits ours), restored afterwards:
    - the absolute warehouse and raw-zone paths as settings resolve them (REDSET_DATA_DIR
      included), instead of the relative defaults in profiles.yml and the sources;
    - tests run when all their models are built or upstream of the selection ("buildable"), so
      the daily runs skip the all-time marts' relationship tests and the all-time runs keep them.
    """
    values = {
        "REDSET_WAREHOUSE": str(settings.warehouse_path()),
        "REDSET_RAW_DIR": str(settings.raw_dir()),
        "DBT_INDIRECT_SELECTION": "buildable",
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig) -> Iterator[Any]:
    """`dbt build` of the selected models and their tests, with row counts and column schemas."""
    settings.warehouse_path().parent.mkdir(parents=True, exist_ok=True)
    # A full refresh rebuilds every date, whatever the partition; otherwise only the window's.
    partitioned = context.assets_def.partitions_def is not None and not config.full_refresh
    args = ["build", "--vars", json.dumps(dbt_vars(context.partition_time_window if partitioned else None))]
    if config.full_refresh:
        args.append("--full-refresh")
    with dbt_environment():
        invocation = dbt.cli(args, context=context)
        try:
            yield from invocation.stream().fetch_row_counts().fetch_column_metadata(with_column_lineage=False)
        finally:
            release_warehouse(invocation)
    # Every invocation writes its own folder under dbt_project/target (about 4 MB): keep it only
    # when the run failed, for its dbt.log and compiled SQL.
    shutil.rmtree(invocation.target_path, ignore_errors=True)


def release_warehouse(invocation: DbtCliInvocation) -> None:
    """Row counts and column schemas are read through a dbt adapter in this process, and
    dbt-duckdb keeps one DuckDB database open per process: close it, or the next dbt process (or
    any reader) finds the file locked while this process lives on (in-process runs, tests)."""
    if invocation.adapter is not None:
        invocation.adapter.cleanup_connections()
    environment = DuckDBConnectionManager._ENV  # no public handle on it
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY_SELECT,
    dagster_dbt_translator=translator,
    partitions_def=daily_partitions,
    # A range of days runs as one dbt invocation with min_date..max_date.
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


def dbt_executable() -> str:
    """The dbt installed next to this Python (the venv's), so an unactivated venv works too."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


dbt_resource = DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())

daily_models_job = dg.define_asset_job(
    "daily_models_job",
    selection=dg.AssetSelection.assets(dbt_daily_models),
    description="dbt build of the date-partitioned models for one day (or a range of days).",
)
