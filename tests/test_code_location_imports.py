"""Every code server and every run worker imports the code location (workspace.yaml's module) afresh:
Dagster starts each run in a new process. So the module leaves out what only some steps need:
pandas (the forecast models) and dbt's Python runner (live mode's warm dbt) load where they run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY_AND_NEEDED_BY_FEW = ("pandas", "dbt.cli.main", "pipeline_assets.insights.forecast", "pipeline_assets.live.loop")


def test_the_code_location_loads_without_pandas_or_dbts_runner() -> None:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    probe = f"import sys, json, {module}; print(json.dumps(sorted(m for m in {HEAVY_AND_NEEDED_BY_FEW!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
