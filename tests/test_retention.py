"""Retention (#22 item 10): alerts.log and cycles.jsonl rotate at REDSET_LOG_MAX_BYTES, serving
temp files of a killed publisher are removed, and prune_old_runs deletes old finished runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.durable import remove_dead_temp_files
from pipeline_assets.orchestration.retention import prune_runs


def test_the_alert_log_rotates_at_its_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDSET_LOG_MAX_BYTES", "1000")
    for i in range(100):
        send_alert("run_failure", f"run {i} failed")
    log, old = settings.alert_log_path(), settings.alert_log_path().with_name("alerts.log.1")
    assert old.exists() and log.stat().st_size < 1000 + 200 and old.stat().st_size < 1000 + 200
    assert log.read_text().splitlines()[-1].endswith("run 99 failed")  # the newest line is kept
    assert not log.with_name("alerts.log.2").exists()  # one old generation only


def test_temp_files_of_a_dead_publisher_are_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is free
    left = tmp_path / f".leaderboard.parquet.{dead.pid}.tmp"
    mine = tmp_path / f".kpis.parquet.{os.getpid()}.tmp"
    published = tmp_path / "leaderboard.parquet"
    for path in (left, mine, published):
        path.write_bytes(b"x")
    assert remove_dead_temp_files(tmp_path) == 1
    assert not left.exists() and mine.exists() and published.exists()


def test_old_finished_runs_are_pruned_and_recent_ones_kept() -> None:
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset
    def tiny() -> None:
        return None

    first = dg.materialize([tiny], instance=instance).run_id
    import time

    cutoff_after_first = time.time()
    time.sleep(0.1)
    second = dg.materialize([tiny], instance=instance).run_id
    # Runs older than "now - (now - cutoff)": the first only.
    assert prune_runs(instance, time.time() - cutoff_after_first) == 1
    assert instance.get_run_by_id(first) is None and instance.get_run_by_id(second) is not None
    assert prune_runs(instance, 30 * 86400) == 0
