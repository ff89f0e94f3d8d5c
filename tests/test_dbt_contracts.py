"""Enforced contracts on the served models: every column typed, and a wrong type fails the build
naming the column. (On Spark they are not enforced; test_spark_engine.py compares its tables.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbt_support import copy_built, first_days_built
from pipeline_assets import settings
from pipeline_assets.warehouse.dbt_assets import dbt_env, dbt_project
from pipeline_assets.warehouse.served import SERVED_MODELS


def test_every_served_dbt_model_has_an_enforced_contract_with_every_column_typed() -> None:
    nodes = {n["name"]: n for n in json.loads(dbt_project.manifest_path.read_text())["nodes"].values()}
    served = [name for name in SERVED_MODELS if name in nodes and nodes[name]["resource_type"] == "model"]
    assert len(served) == len(SERVED_MODELS) - 2  # workload_forecasts and forecast_backtest: Python assets
    for name in served:
        node = nodes[name]
        assert node["config"]["contract"]["enforced"], name
        assert node["columns"] and all(c["data_type"] for c in node["columns"].values()), name


@pytest.mark.slow
def test_a_wrong_type_in_a_contract_fails_the_build_naming_the_column(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_built(first_days_built(tmp_path_factory), monkeypatch, tmp_path / "built")  # leaderboard's inputs
    project = tmp_path / "project"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    marts = project / "models" / "marts" / "_marts.yml"
    declared = "      - name: rank\n        data_type: integer\n"
    assert declared in marts.read_text()
    marts.write_text(marts.read_text().replace(declared, "      - name: rank\n        data_type: varchar\n"))

    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "build", "--no-use-colors", "--select", "leaderboard", "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        cwd=project, env={**os.environ, **dbt_env(None)}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "This model has an enforced contract that failed." in result.stdout, result.stdout[-3000:]
    mismatch = [line for line in result.stdout.splitlines() if "data type mismatch" in line]
    assert len(mismatch) == 1 and "| rank " in mismatch[0] and "INTEGER" in mismatch[0] and "VARCHAR" in mismatch[0]
