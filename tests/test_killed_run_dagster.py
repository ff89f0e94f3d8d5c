"""killed_run, end to end: kill -9 `dagster dev` together with a running raw dump, start it again on
the same instance, and the pipeline recovers with no one asking.

`dagster dev` runs on a DAGSTER_HOME with the project's dagster.yaml (run monitoring on). While a
dump_kafka_job run that kafka_lag_sensor started is consuming, SIGKILL goes to dagster dev's whole
process group: webserver, daemon, code server and the run's worker, once the run's log says it
consumes (a backlog it takes seconds to work through, uncommitted until its end). More of the replay arrives
while Dagster is down. After the restart the stale run must be marked failed (by the sensors'
liveness check, runtime/workers.py), the lag sensor must ask for the dump again, the lag must
reach 0, and the raw zone must hold every produced offset exactly once, its dates owed a build.
The seconds from the kill to the failed run and to lag 0 are printed.

build_marts_on_new_raw_batches and freshness_checks_sensor are switched off first, and the sensors
tick every 3 s: dbt builds, a run of the freshness checks and ticks each second would only share the two cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from raw_support import assert_offsets_exactly_once, group_offsets, high_watermarks, raw_rows
from sensor_switches import switch_sensors

from pipeline_assets import settings
from pipeline_assets.kafka import producer
from pipeline_assets.raw import owed_dates
from pipeline_assets.runtime.ports import free_ports
from pipeline_assets.runtime.workers import GONE_TAG, lock_dir
from pipeline_assets.source import generator

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
BACKLOG, LATER = 200_000, 20_000  # a dump of BACKLOG takes seconds even on an idle core
FAIL_WITHIN_S = 180.0  # the bound for marking the stale run failed
WAIT_S = 300.0
# Off in both tests: the first tick's run of every freshness check would only share the two cores.
QUIET = {"freshness_checks_sensor": False}


def instance_at(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def wait_for(what: str, check, deadline: float, log: Path):
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; dagster dev's log:\n{log.read_text()[-4000:]}")


def start_dagster(env: dict[str, str], log: Path) -> subprocess.Popen:
    port = free_ports(1)[0]
    out = log.open("ab")
    return subprocess.Popen(
        [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class DagsterDev:
    """`dagster dev` in its own process group, killed with SIGKILL (all of it) and started again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc = start_dagster(env, log)

    def kill(self) -> float:
        kill_group(self.proc)
        return time.time()

    def restart(self) -> None:
        self.proc = start_dagster(self.env, self.log)

    def __enter__(self) -> DagsterDev:
        return self

    def __exit__(self, *exc: object) -> None:
        kill_group(self.proc)


def runs_of(instance: dg.DagsterInstance, job: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job)))


def lag(bootstrap: str, topic: str, group: str) -> int:
    return sum(o.lag for o in group_offsets(bootstrap, topic, group))


def dagster_env(tmp_path: Path, bootstrap: str, topic: str, group: str, **extra: str) -> tuple[Path, Path, dict[str, str]]:
    """(DAGSTER_HOME with the project's dagster.yaml, data folder, the environment of dagster dev)."""
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copyfile(ROOT / "scripts" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "REDSET_DATA_DIR": str(data),
        "REDSET_TOPIC": topic, "REDSET_CONSUMER_GROUP": group, "REDSET_SENSOR_INTERVAL": "3",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, **extra,
    }  # fmt: skip
    for name in ("REDSET_RAW_DIR", "REDSET_WAREHOUSE", "REDSET_SERVING_DIR", "REDSET_DEAD_LETTER_DIR"):
        env.pop(name, None)
    return home, data, env


def await_recovery(
    instance: dg.DagsterInstance, stale: dg.DagsterRun, killed_at: float, kafka: tuple[str, str, str], log: Path
) -> None:
    """The stale run marked failed by the liveness check within FAIL_WITHIN_S, then lag 0; prints
    the seconds from the kill to each."""
    failed = wait_for(
        f"the stale {stale.job_name} run to be marked failed",
        lambda: (r := instance.get_run_record_by_id(stale.run_id)).dagster_run.is_finished and r,
        time.monotonic() + FAIL_WITHIN_S, log,
    )  # fmt: skip
    assert failed.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert failed.dagster_run.tags.get(GONE_TAG) == "true"
    wait_for("lag 0", lambda: lag(*kafka) == 0, time.monotonic() + WAIT_S, log)
    print(f"{stale.job_name}: kill -> failed run {failed.end_time - killed_at:.1f}s, kill -> lag 0 {time.time() - killed_at:.1f}s")


@pytest.mark.kafka
@pytest.mark.slow(seconds=150)
def test_killed_run_dagster_dev_killed_with_a_running_dump_recovers_on_restart(
    kafka_broker: str, kafka_topic: str, tmp_path: Path
) -> None:
    group = f"test-killed-{uuid.uuid4().hex[:8]}"
    home, data, env = dagster_env(tmp_path, kafka_broker, kafka_topic, group)
    with instance_at(home) as instance:
        switch_sensors(instance, build_marts_on_new_raw_batches=False, **QUIET)
    for rows, seed, name in ((BACKLOG, 31, "backlog"), (LATER, 32, "later")):
        table = generator.generate(rows, seed=seed, start=date(2024, 3, 1), days=3)
        generator.write(table, tmp_path / f"{name}.parquet")
    stats = producer.produce(tmp_path / "backlog.parquet", kafka_topic, bootstrap=kafka_broker, progress=False)
    assert stats.errors == 0

    log = tmp_path / "dagster_dev.log"
    with DagsterDev(env, log) as dev, instance_at(home) as instance:
        deadline = time.monotonic() + WAIT_S

        def consuming() -> dg.DagsterRun | None:
            for run in runs_of(instance, "dump_kafka_job"):
                said = (e.user_message for e in instance.all_logs(run.run_id))  # consume.py's plan line, then it consumes
                if run.status == dg.DagsterRunStatus.STARTED and any(f"this run takes {BACKLOG:,}" in m for m in said):
                    return run
            return None

        stale = wait_for("a dump run that consumes", consuming, deadline, log)
        assert (lock_dir(instance) / f"{stale.run_id}.json").exists()
        assert instance.get_run_by_id(stale.run_id).status == dg.DagsterRunStatus.STARTED, "the dump ended first"
        killed_at = dev.kill()
        committed_lag = lag(kafka_broker, kafka_topic, group)
        print(f"killed dagster dev with dump run {stale.run_id}; committed lag {committed_lag:,}")
        assert committed_lag == BACKLOG, "killed after the dump's one commit (at its end: commit_every > BACKLOG)"

        # The replay goes on while Dagster is down; then Dagster starts again on the same instance.
        assert producer.produce(tmp_path / "later.parquet", kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0
        assert instance.get_run_by_id(stale.run_id).status == dg.DagsterRunStatus.STARTED
        dev.restart()
        await_recovery(instance, stale, killed_at, (kafka_broker, kafka_topic, group), log)

        # Requested again with no one asking: the lag sensor's retry of the same offsets.
        after = [r for r in runs_of(instance, "dump_kafka_job") if r.run_id != stale.run_id]
        assert after and all(r.tags.get("dagster/sensor_name") == "kafka_lag_sensor" for r in after)
        assert any("#retry-" in r.tags.get("dagster/run_key", "") for r in after)
        slots = instance.event_log_storage.get_concurrency_info("raw_kafka")
        assert stale.run_id not in slots.active_run_ids

    # Nothing lost: every produced offset once (re-deliveries deduped), and the dates owed a build.
    with settings.environment({"REDSET_DATA_DIR": str(data)}):
        highs = high_watermarks(kafka_broker, kafka_topic)
        assert sum(highs.values()) == BACKLOG + LATER
        rows = raw_rows(["kafka_partition", "kafka_offset"])
        assert_offsets_exactly_once(rows, highs)
        on_disk = {date.fromisoformat(p.parent.name.split("=")[1]) for p in settings.raw_dir().glob("arrival_date=*/*.parquet")}
        assert {d for r in owed_dates.pending() for d in r.dates} == on_disk


@pytest.mark.kafka
@pytest.mark.slow(seconds=150)
def test_killed_run_dagster_dev_killed_with_live_mode_recovers_on_restart(
    kafka_broker: str, kafka_topic: str, tmp_path: Path
) -> None:
    """The same for live mode: its run's worker dies with dagster dev mid-backlog. After the restart
    the stale live_mode_job run is failed (its worker lock is free, and so is live.lock), and
    keep_live_mode_running starts a new live run (REDSET_LIVE_RETRY_SECONDS after a failed one, 5 s
    here) that works the lag off. kafka_lag_sensor is switched off, so that the batch dump does not take over meanwhile."""
    group = f"test-killed-live-{uuid.uuid4().hex[:8]}"
    home, data, env = dagster_env(
        tmp_path, kafka_broker, kafka_topic, group, REDSET_LIVE_MAX_MESSAGES="5000", REDSET_LIVE_POLL_SECONDS="0.1",
        REDSET_LIVE_INSIGHTS_SECONDS="3600", REDSET_LIVE_TEST_SECONDS="3600", REDSET_LIVE_RETRY_SECONDS="5",
    )  # fmt: skip
    with instance_at(home) as instance:
        switch_sensors(instance, keep_live_mode_running=True, kafka_lag_sensor=False, **QUIET)
    table = generator.generate(30_000, seed=33, start=date(2024, 3, 1), days=2)
    generator.write(table, tmp_path / "backlog.parquet")
    assert producer.produce(tmp_path / "backlog.parquet", kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0

    log = tmp_path / "dagster_dev.log"
    with DagsterDev(env, log) as dev, instance_at(home) as instance:
        deadline = time.monotonic() + WAIT_S

        def live_run_committed() -> dg.DagsterRun | None:
            runs = [r for r in runs_of(instance, "live_mode_job") if r.status == dg.DagsterRunStatus.STARTED]
            committed = sum(o.committed or 0 for o in group_offsets(kafka_broker, kafka_topic, group))
            return runs[0] if runs and 0 < committed < table.num_rows else None

        stale = wait_for("a live run mid-backlog", live_run_committed, deadline, log)
        killed_at = dev.kill()
        print(f"killed dagster dev with live run {stale.run_id}; lag {lag(kafka_broker, kafka_topic, group):,}")
        assert instance.get_run_by_id(stale.run_id).status == dg.DagsterRunStatus.STARTED
        env.pop("REDSET_LIVE_MAX_MESSAGES")  # small cycles got the kill mid-backlog; now the rest in one
        dev.restart()
        await_recovery(instance, stale, killed_at, (kafka_broker, kafka_topic, group), log)
        after = [r for r in runs_of(instance, "live_mode_job") if r.run_id != stale.run_id]
        assert after and all(r.tags.get("dagster/sensor_name") == "keep_live_mode_running" for r in after)

    with settings.environment({"REDSET_DATA_DIR": str(data)}):
        highs = high_watermarks(kafka_broker, kafka_topic)
        assert_offsets_exactly_once(raw_rows(["kafka_partition", "kafka_offset"]), highs)
