"""release_warehouse() frees the warehouse file that dbt-duckdb keeps open in this process.

It reaches dbt-duckdb's process-wide database through `DuckDBConnectionManager.env()`, which no
documentation promises: if a dbt-duckdb upgrade changes that, these tests fail. So do they if
InstalledDbtCliResource's dbt version (dagster-dbt's private `_cli_version`) stops being the one
`dbt --version` prints.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cached_property
from pathlib import Path

import pytest
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from packaging import version

from pipeline_assets import settings
from pipeline_assets.warehouse import dbt_assets as dbt_stage

# Another process opening the file for writing: what the next dbt run does.
OPEN_FOR_WRITING = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('CREATE TABLE IF NOT EXISTS t (x INT)')"


def _writable_elsewhere(path: Path) -> bool:
    result = subprocess.run([sys.executable, "-c", OPEN_FOR_WRITING, str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        assert "lock" in result.stderr.lower(), result.stderr
    return result.returncode == 0


def test_release_closes_the_database_dbt_duckdb_keeps_open(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    assert _writable_elsewhere(warehouse)  # creates it (dagster-dbt's adapter opens it read-only)
    with settings.environment({**dbt_stage.dbt_env(None), "REDSET_WAREHOUSE": str(warehouse)}):
        invocation = dbt_stage.dbt_resource.cli(["parse", "--quiet"], target_path=tmp_path / "target")
        invocation.wait()
        assert invocation.adapter is not None, "dagster-dbt made no in-process adapter"
        # What fetch_row_counts does: a query through the adapter, in this process.
        with invocation.adapter.connection_named("probe"):
            invocation.adapter.execute("SELECT 1")
        assert not _writable_elsewhere(warehouse), "dbt-duckdb should hold the file"
        assert DuckDBConnectionManager.env() is not None  # the accessor release_warehouse uses
        dbt_stage.release_warehouse(invocation)
        assert _writable_elsewhere(warehouse)
        # ...and the error it takes for "nothing open": release_warehouse re-raises any other.
        with pytest.raises(Exception, match="before creation"):
            DuckDBConnectionManager.env()
        dbt_stage.release_warehouse(invocation)  # nothing open any more: a no-op


def test_the_dbt_version_without_a_subprocess_is_the_one_dbt_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_dbt import DbtCliResource

    assert isinstance(DbtCliResource.__dict__.get("_cli_version"), cached_property), "dagster-dbt renamed it"
    printed = subprocess.run([dbt_stage.dbt_executable(), "--version"], capture_output=True, text=True, check=True).stdout
    resource = dbt_stage.InstalledDbtCliResource(project_dir=dbt_stage.dbt_project, dbt_executable=dbt_stage.dbt_executable())
    monkeypatch.setattr("dagster_dbt.core.resource.check_output", None)  # dagster-dbt's subprocess: would fail now
    core = re.search(r"Core:\s*- installed:\s*(\S+)", printed)
    assert core and resource._cli_version == version.parse(core.group(1)), printed


@pytest.mark.parametrize("times", [1, 2])
def test_release_without_an_open_database_is_a_no_op(times: int) -> None:
    class NoAdapter:
        adapter = None

    for _ in range(times):
        dbt_stage.release_warehouse(NoAdapter())  # type: ignore[arg-type]
