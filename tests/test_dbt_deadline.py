"""A deadline on each dbt invocation (pipeline_assets/warehouse/dbt_deadline.py): past
REDSET_DBT_MAX_RUNTIME_SECONDS the dbt process is stopped and the asset fails saying so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dbt_support import dbt_paths, materialize_dbt

from pipeline_assets.warehouse.dbt_assets import dbt_daily_models
from pipeline_assets.warehouse.dbt_deadline import process_deadline


def test_a_process_past_its_deadline_is_stopped_and_one_within_is_not() -> None:
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with process_deadline(slow, 0.5, grace_s=5) as expired:
        slow.wait(30)  # ended by the deadline, long before its 60 s
    assert expired() and slow.returncode != 0
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    with process_deadline(quick, 30) as expired:
        assert quick.wait(30) == 0
    assert not expired()


def test_a_dbt_run_past_max_runtime_fails_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv("REDSET_DBT_MAX_RUNTIME_SECONDS", "1")  # dbt's own start takes longer
    with pytest.raises(dg.Failure, match=r"dbt build .* ran past REDSET_DBT_MAX_RUNTIME_SECONDS \(1s\) and was stopped"):
        materialize_dbt([dbt_daily_models], partition="2024-03-01")
