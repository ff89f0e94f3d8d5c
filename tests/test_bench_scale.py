"""bench/scale.py's stages resume: a completed stage keeps its figures and is skipped next time."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_assets.settings import PROJECT_ROOT


def scale(work: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the bench starts a broker of its own in the work folder
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "scale.py"), "--rows", "3000", "--work", str(work), *args],
        env=env, capture_output=True, text=True, timeout=600, cwd=work.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.kafka
def test_the_produce_stage_runs_once_then_is_skipped(tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = scale(work, "--stage", "produce")
    figures = json.loads((work / "stages" / "produce.json").read_text())
    assert figures["rows"] == 3000 and figures["rows_per_s"] > 0
    assert figures["disk_after"]["kafka_log_bytes"] > 0
    assert "stage (pid" in " ".join(figures["peak_rss_mib"])
    assert "skipped" not in first

    second = scale(work, "--stage", "produce")
    assert "produce: done before" in second and "skipped" in second
    assert json.loads((work / "stages" / "produce.json").read_text()) == figures

    missing = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "scale.py"), "--rows", "3000", "--work", str(work), "--stage", "build"],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode != 0 and "needs stage dump first" in missing.stderr
