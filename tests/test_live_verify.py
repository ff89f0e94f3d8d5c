"""Live mode's dbt tests (pipeline_assets/live/verify.py), through a plain in-process dbtRunner.

A tiny warehouse is built with `dbt run`; then `run_checks`:
1. all tests pass: every dbt test comes back as the asset check dagster-dbt defines for it,
   passed, and the state file says verified;
2. a NULL deployment in clean_queries: the not_null check of that column fails (also as read back
   from a Dagster instance the evaluations were reported to), the state turns unverified with that
   test named, and one dbt_tests_failing alert is written;
3. still failing (recorded without dbt): no second alert, the episode keeps its start;
4. repaired: verified again, nothing failing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dbt.cli.main import dbtRunner
from dbt_support import dbt_paths, kafka_rows, write_raw_file

from pipeline_assets import schema, settings
from pipeline_assets.live import verify
from pipeline_assets.source import generator
from pipeline_assets.warehouse.dbt_assets import dbt_env, dbt_project, release_warehouse

pytestmark = pytest.mark.slow

NOT_NULL_DEPLOYMENT = dg.AssetCheckKey(dg.AssetKey("clean_queries"), "not_null_clean_queries_deployment")


class PlainRunner:
    """dbtRunner with live mode's calling convention: invoke(args, env)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def invoke(self, args: list[str], env: Mapping[str, str]):
        project = str(dbt_project.project_dir)
        flags = ["--project-dir", project, "--profiles-dir", project, "--target-path", str(self.target), "--quiet"]
        with settings.environment({**dbt_env(None), **env}):
            try:
                return dbtRunner().invoke([*args, *flags])
            finally:
                release_warehouse(SimpleNamespace(adapter=None))  # close dbt-duckdb's database


def alerts(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "DBT TESTS FAILING" in line] if path.exists() else []


def test_dbt_tests_become_asset_checks_and_an_unverified_episode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    paths = dbt_paths(monkeypatch, tmp_path)
    serving = tmp_path / "serving"
    monkeypatch.setenv("REDSET_SERVING_DIR", str(serving))
    rows = generator.generate(rows=400, seed=5, deployment="both", start=date(2024, 3, 1), days=2)
    rows = rows.select(list(schema.COLUMN_NAMES)).to_pylist()
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", datetime(2024, 3, 3)), "redset.queries-p0-o0.parquet")
    dbt = PlainRunner(tmp_path / "target")
    assert dbt.invoke(["run"], {}).success

    # 1. All pass: one passed evaluation per dbt test that Dagster knows, none failing.
    evaluations = verify.run_checks(dbt, {})
    keys = {dg.AssetCheckKey(e.asset_key, e.check_name) for e in evaluations}
    assert len(keys) == len(evaluations) > 100
    assert keys <= verify.defined_checks()
    assert NOT_NULL_DEPLOYMENT in keys
    assert all(e.passed for e in evaluations if e.severity == dg.AssetCheckSeverity.ERROR)
    assert verify.read_state()["verified"] is True
    assert alerts(paths.raw_dir.parent / "alerts.log") == []

    # 2. A NULL deployment: that check fails, unverified, one alert.
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("UPDATE clean_queries SET deployment = NULL WHERE query_id = (SELECT min(query_id) FROM clean_queries)")
    evaluations = verify.run_checks(dbt, {})
    failing = {dg.AssetCheckKey(e.asset_key, e.check_name): e for e in evaluations if not e.passed}
    assert NOT_NULL_DEPLOYMENT in failing
    assert failing[NOT_NULL_DEPLOYMENT].severity == dg.AssetCheckSeverity.ERROR
    assert failing[NOT_NULL_DEPLOYMENT].metadata["failures"].value >= 1
    state = verify.read_state()
    assert state["verified"] is False and "not_null_clean_queries_deployment" in state["failed"]
    since = state["unverified_since"]
    assert since and len(alerts(paths.raw_dir.parent / "alerts.log")) == 1
    with dg.instance_for_test() as instance:  # what the UI shows once the loop reports them
        for e in evaluations:
            instance.report_runless_asset_event(e)
        [latest] = instance.event_log_storage.get_asset_check_execution_history(NOT_NULL_DEPLOYMENT, limit=1)
        assert latest.status == AssetCheckExecutionRecordStatus.FAILED

    # 3. Still failing (another test too): same episode, no second alert.
    verify.record(["not_null_clean_queries_deployment", "unique_leaderboard_query_id"])
    assert verify.read_state()["unverified_since"] == since
    assert verify.read_state()["failed"] == ["not_null_clean_queries_deployment", "unique_leaderboard_query_id"]
    assert len(alerts(paths.raw_dir.parent / "alerts.log")) == 1

    # 4. Repaired: verified again.
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("UPDATE clean_queries SET deployment = 'provisioned' WHERE deployment IS NULL")
    verify.run_checks(dbt, {})
    state = json.loads((serving / verify.STATE_FILE).read_text())
    assert state["verified"] is True and state["failed"] == [] and state["unverified_since"] is None


def test_cadence(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDSET_LIVE_TEST_SECONDS", "60")
    assert verify.due(None, 5.0)
    assert not verify.due(100.0, 159.0)
    assert verify.due(100.0, 160.0)
