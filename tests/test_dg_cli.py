"""The `dg` CLI (Dagster's default for projects since 1.11) loads this project: pyproject's [tool.dg]."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).with_name("dg")


def _dg(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [str(DG), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_dg_check_defs_loads_the_code_location():
    result = _dg("check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr
    # The venv warning is suppressed in pyproject: running .venv/bin/dg unactivated is the normal case.
    assert "virtual environment" not in result.stdout + result.stderr
