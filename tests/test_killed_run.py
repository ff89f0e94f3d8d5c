"""killed_run: a STARTED run whose worker died is marked failed, its pool slot freed (runtime/workers.py).

A worker here is a real process that takes a run's worker lock as the project's executor does,
and is then killed with SIGKILL; the liveness check is what the guarding sensors call each tick.
The end-to-end kill of `dagster dev` with a running dump is tests/test_killed_run_dagster.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from pipeline_assets import settings
from pipeline_assets.live.switch import live_mode_active, one_live_loop, running_loop
from pipeline_assets.runtime.workers import GONE_TAG, fail_dead_runs, lock_dir

WORKER = """
import sys, time
import dagster as dg
from dagster._core.instance.ref import InstanceRef
from pipeline_assets.runtime.workers import hold_worker_lock
instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1]))
hold_worker_lock(instance, sys.argv[2])
print("holding", flush=True)
time.sleep(600)
"""


def instance_at(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def started_run(instance: dg.DagsterInstance, job: str) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name=job, run_id=run_id, status=dg.DagsterRunStatus.STARTED))
    return run_id


def test_killed_run_worker_is_marked_failed_and_its_pool_slot_freed(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_at(home) as instance:
        run_id = started_run(instance, "dump_kafka_job")
        unjudged = started_run(instance, "dump_kafka_job")  # no worker lock: not ours to judge
        storage = instance.event_log_storage
        storage.set_concurrency_slots("raw_kafka", 1)
        assert storage.claim_concurrency_slot("raw_kafka", run_id, "raw_queries").is_claimed
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(home), run_id], stdout=subprocess.PIPE)
        try:
            assert worker.stdout.readline().strip() == b"holding"
            assert json.loads((lock_dir(instance) / f"{run_id}.json").read_text())["pid"] == worker.pid
            assert fail_dead_runs(instance) == []  # alive: nothing to do
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()

        assert fail_dead_runs(instance) == [f"dump_kafka_job run {run_id}: worker gone, marked failed"]
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE and run.tags[GONE_TAG] == "true"
        [failure] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"pid {worker.pid}" in failure.message and "worker gone" in failure.message
        assert storage.get_concurrency_info("raw_kafka").active_slot_count == 0
        assert instance.get_run_by_id(unjudged).status == dg.DagsterRunStatus.STARTED
        assert fail_dead_runs(instance) == []  # once


def test_killed_run_live_loop_is_judged_by_its_lock_not_by_a_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    live = settings.data_dir() / "live"
    with dg.DagsterInstance.ephemeral() as instance:
        with one_live_loop("redset live"):
            assert running_loop()["where"] == "redset live"
        # A loop killed with SIGKILL leaves running.json behind, and its pid may belong to another
        # process by now (here: this one, alive): no process holds live.lock, so no loop runs.
        (live / "running.json").write_text(json.dumps({"pid": os.getpid(), "where": "a killed loop"}))
        assert running_loop() is None
        assert live_mode_active(instance) is None


def test_killed_run_monitoring_is_on_in_the_projects_instance_and_bounded_jobs_have_a_max_runtime(tmp_path: Path) -> None:
    import shutil

    from pipeline_assets.orchestration.definitions import defs

    shutil.copyfile(settings.PROJECT_ROOT / "scripts" / "dagster.yaml", tmp_path / "dagster.yaml")
    with instance_at(tmp_path) as instance:  # what make demo, make dagster-home and compose get
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    bounds = {name: defs.resolve_job_def(name).tags.get("dagster/max_runtime") for name in
              ("dump_kafka_job", "ingest_landing_file_job", "build_marts_job", "serving_snapshot_job", "live_mode_job")}  # fmt: skip
    assert {k: v and int(v) >= 3600 for k, v in bounds.items()} == {
        "dump_kafka_job": True, "ingest_landing_file_job": True, "build_marts_job": True,
        "serving_snapshot_job": True, "live_mode_job": None,  # runs until switched off
    }  # fmt: skip
