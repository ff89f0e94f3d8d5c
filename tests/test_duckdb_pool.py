"""A bare `dagster dev -w workspace.yaml` on a fresh DAGSTER_HOME (no dagster.yaml, so no pool limit
in the instance) still runs the DuckDB writers one at a time: the project's executor (pools.py)
limits the `duckdb` pool before any step claims a slot.

Two serving_snapshot runs are launched at once while the test holds the warehouse's write lock, so
each step that starts stays inside the asset until the lock goes. Without the limit both steps
start and their spans overlap; with it the second waits for the pool ("Step blocked by limit").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient

from pipeline_assets.orchestration.pools import ensure_single_writer_pools
from pipeline_assets.runtime.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
BLOCKED = "blocked by limit for pool duckdb"  # Dagster's engine event for a step waiting for a slot
DEADLINE = 150.0  # seconds; on two busy cores `dagster dev` alone can take 30 s to come up


def _wait_for(what: str, check, deadline: float):
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _instance(home: Path) -> dg.DagsterInstance:
    """The instance `dagster dev` uses with DAGSTER_HOME=home (sqlite files under it)."""
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _make_warehouse(path: Path) -> None:
    """The smallest warehouse serving_snapshot publishes: one served mart with a row."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE query_metrics AS SELECT 'prov' AS deployment, DATE '2024-03-01' AS arrival_date, "
        "1 AS queries, 1 AS successful, 0 AS aborted, 0 AS cached, 1.0 AS mbytes_scanned, "
        "0.0 AS mbytes_spilled, 0 AS joins, 0 AS aggregations, 1 AS scans"
    )
    con.close()


def _step_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogEntry]:
    return [e for e in instance.all_logs(run_id) if e.step_key == "serving_snapshot"]


def _at_pool(instance: dg.DagsterInstance, run_id: str) -> bool:
    """The run's step has started, or is waiting for a slot of the `duckdb` pool."""
    for e in _step_events(instance, run_id):
        if e.dagster_event_type == dg.DagsterEventType.STEP_START:
            return True
        if BLOCKED in e.message:
            return True
    return False


def _span(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    times = {e.dagster_event_type: e.timestamp for e in _step_events(instance, run_id) if e.is_dagster_event}
    assert dg.DagsterEventType.STEP_SUCCESS in times, f"run {run_id}: serving_snapshot did not succeed"
    return times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]


def test_pool_limit_is_set_only_where_the_instance_has_none(tmp_path: Path) -> None:
    dagster_home = tmp_path / "home"
    dagster_home.mkdir()
    with _instance(dagster_home) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("raw_kafka", 3)  # someone's explicit choice: kept
        assert ensure_single_writer_pools(instance, ["duckdb", "raw_kafka", "duckdb"]) == ["duckdb"]
        limits = {p.name: p.limit for p in storage.get_pool_limits()}
        assert limits == {"duckdb": 1, "raw_kafka": 3}
        assert ensure_single_writer_pools(instance, ["duckdb"]) == []


@pytest.mark.slow(seconds=40)
def test_bare_dagster_dev_runs_duckdb_writers_one_at_a_time(tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    dagster_home, data_dir = tmp_path / "dagster_home", tmp_path / "data"
    dagster_home.mkdir()
    data_dir.mkdir()
    warehouse = data_dir / "warehouse.duckdb"
    _make_warehouse(warehouse)
    web_port, no_broker_port = free_ports(2)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(dagster_home),
        "REDSET_DATA_DIR": str(data_dir),
        # The lag sensor runs by default: point it at a port where nothing listens.
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{no_broker_port}",
    }
    env.pop("REDSET_WAREHOUSE", None)
    env.pop("REDSET_SERVING_DIR", None)
    log = (tmp_path / "dagster_dev.log").open("w")
    dev = subprocess.Popen(
        [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(web_port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lock = None
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=web_port)

        def submit() -> str | None:
            try:
                return client.submit_job_execution("serving_snapshot_job", repository_location_name="redset")
            except Exception:  # the webserver or the code location is not up yet
                assert dev.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
                return None

        def server_up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{web_port}/server_info", timeout=2).ok
            except requests.ConnectionError:
                return False

        _wait_for("the webserver", server_up, deadline)
        lock = duckdb.connect(str(warehouse))  # the write lock: a started step waits inside the asset
        first = _wait_for("the first run to be submitted", submit, deadline)
        second = submit()
        assert second, "the second run was not accepted"

        with _instance(dagster_home) as instance:
            _wait_for(
                "both runs to reach the duckdb pool",
                lambda: _at_pool(instance, first) and _at_pool(instance, second),
                deadline,
            )
            lock.close()
            lock = None
            done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
            _wait_for(
                "both runs to finish",
                lambda: all(instance.get_run_by_id(r).status in done for r in (first, second)),
                deadline,
            )
            spans = sorted([_span(instance, first), _span(instance, second)])
            assert spans[0][1] <= spans[1][0], f"the two serving_snapshot steps overlapped: {spans}"
            waited = [r for r in (first, second) if any(BLOCKED in e.message for e in _step_events(instance, r))]
            assert len(waited) == 1, "exactly one run should have waited for the pool"
            assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}["duckdb"] == 1
    finally:
        if lock is not None:
            lock.close()
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        log.close()
