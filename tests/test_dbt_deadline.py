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


@pytest.mark.timeout(300)  # a deadline that does not stop the query leaves it running for many minutes
def test_a_live_dbt_invocation_past_max_runtime_is_stopped_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Live mode's in-process dbt has the same deadline: its query is cancelled, the invocation
    fails naming the setting, and the warm runner still serves the next invocation."""
    from pipeline_assets.live.warm_dbt import DbtDeadlineError, WarmDbt

    dbt_paths(monkeypatch, tmp_path)
    dbt = WarmDbt(tmp_path / "live_dbt")
    dbt.manifest  # noqa: B018  (the parse is not an invocation)
    monkeypatch.setenv("REDSET_DBT_MAX_RUNTIME_SECONDS", "1")
    endless = "select sum(i) as total from range(1000000000000) t(i)"  # minutes of DuckDB work
    with pytest.raises(DbtDeadlineError, match=r"^dbt show --inline .* ran past REDSET_DBT_MAX_RUNTIME_SECONDS \(1s\) and was stopped$"):
        dbt.invoke(["show", "--inline", endless])
    monkeypatch.setenv("REDSET_DBT_MAX_RUNTIME_SECONDS", "600")
    # A model run, as a live cycle's (a second inline query would clash with the interrupted one's node).
    ran = dbt.invoke(["run", "--select", "stg_query_deliveries"])
    assert ran.success and [str(r.status) for r in ran.result.results] == ["success"]
