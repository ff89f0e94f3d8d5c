"""The dbt unit tests (`unit_tests:` of the models with subtle rules) run and pass on DuckDB, and
the environment Dagster's builds and live mode give dbt leaves them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_support import copy_built, first_days_built
from pipeline_assets.live.warm_dbt import WarmDbt

SELECT = ["test", "--select", "test_type:unit"]
# Each model whose rules are subtle has unit tests (dbt_project/models/**/_unit_*.yml).
COVERED = {"quarantine_queries", "query_repeats", "workload_anomalies", "weekly_workload_drift"}


@pytest.mark.slow(seconds=40)
def test_unit_tests_run_and_pass_on_duckdb_and_builds_skip_them(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unit tests read their inputs' column types from the warehouse: a built one (shared fixture).
    copy_built(first_days_built(tmp_path_factory), monkeypatch, tmp_path / "built")
    dbt = WarmDbt(tmp_path / "dbt")
    defined = {test.name: test.model for test in dbt.manifest.unit_tests.values()}
    assert set(defined.values()) == COVERED
    assert len(defined) == 5

    # conftest excludes them for every test's dbt: here only dbt_env's own setting may.
    monkeypatch.delenv("DBT_EXCLUDE_RESOURCE_TYPES", raising=False)
    skipped = dbt.invoke(SELECT)  # dbt_env's environment: what Dagster's builds and live mode run with
    assert skipped.success and not skipped.result.results

    ran = dbt.invoke(SELECT, {"DBT_EXCLUDE_RESOURCE_TYPES": ""})  # empty: dbt reads it as unset
    outcomes = {r.node.name: str(r.status) for r in ran.result.results}
    failed = {r.node.name: r.message for r in ran.result.results if str(r.status) != "pass"}
    assert not failed, failed
    assert outcomes == {name: "pass" for name in defined}
