"""Compose's Dagster instance, docker/dagster.yaml, against a real PostgreSQL server.

DAGSTER_HOME holds that very file (a symlink to it), its DAGSTER_POSTGRES_* variables point at the
`postgres_server` fixture, and `dagster dev` runs the webserver, the daemon and the code server as
separate processes on it, as compose runs them in separate containers. A few thousand rows go to
Kafka; the daemon's kafka_lag_sensor launches the raw dump and, once it has succeeded,
build_marts_on_new_raw_batches launches the dbt build. The webserver's GraphQL must list both, with
the sensors that launched them, the dump succeeded and the build started by its own run worker (a
fourth process); Postgres must hold the same runs and that worker's events, and no SQLite run
database may exist under DAGSTER_HOME. The build is not awaited to its end: dbt's models take
minutes on two busy cores, and the instance is shared once the worker's events are in.
freshness_checks_sensor is switched off first and the sensors tick every 3 s: its first run and
ticks each second would only share the two cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import requests
import yaml
from postgres_support import SUPERUSER, PostgresServer
from sensor_switches import switch_sensors

from pipeline_assets import settings
from pipeline_assets.kafka import producer
from pipeline_assets.runtime import daemons
from pipeline_assets.runtime.ports import free_ports
from pipeline_assets.source import generator

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
JOBS = {"dump_kafka_job": "kafka_lag_sensor", "build_marts_job": "build_marts_on_new_raw_batches"}
WANTED = {"dump_kafka_job": {"SUCCESS"}, "build_marts_job": {"STARTED", "SUCCESS"}}  # STARTED: by its worker
WAIT_S = 600.0  # a bound for a loaded machine: dagster dev, its code server and each run worker load the definitions
RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results { runId jobName status tags { key value } } } } }
"""


def test_compose_instance_file_keeps_the_local_settings() -> None:
    """docker/dagster.yaml is scripts/dagster.yaml plus Postgres storage through psycopg2, every value from
    the environment."""
    compose = yaml.safe_load((ROOT / "docker" / "dagster.yaml").read_text())
    local = yaml.safe_load((ROOT / "scripts" / "dagster.yaml").read_text())
    storage = compose.pop("storage")
    assert compose == local
    assert set(storage) == {"postgres"}
    db = storage["postgres"]["postgres_db"]
    assert db.pop("scheme") == "postgresql+psycopg2"
    assert {k: set(v) for k, v in db.items()} == {k: {"env"} for k in ("hostname", "port", "username", "password", "db_name")}


def graphql_runs(port: int) -> dict[str, dict]:
    """jobName -> the newest run the webserver lists for it ({} while it is not up)."""
    try:
        reply = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": RUNS_QUERY}, timeout=10)
    except requests.ConnectionError:
        return {}
    if reply.status_code != 200:
        return {}
    runs = reply.json()["data"]["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    newest: dict[str, dict] = {}
    for run in runs["results"]:  # newest first
        newest.setdefault(run["jobName"], run)
    return newest


@pytest.mark.kafka
@pytest.mark.slow(seconds=90)
def test_dump_and_build_through_the_daemon_on_the_compose_instance(
    kafka_broker: str, kafka_topic: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(database)
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").symlink_to(ROOT / "docker" / "dagster.yaml")
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "DAGSTER_HOME": str(home), "REDSET_DATA_DIR": str(data),
        "REDSET_TOPIC": kafka_topic, "REDSET_CONSUMER_GROUP": f"test-compose-{uuid.uuid4().hex[:8]}",
        "REDSET_SENSOR_INTERVAL": "3", "KAFKA_BOOTSTRAP_SERVERS": kafka_broker,
        "DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(postgres_server.port),
        "DAGSTER_POSTGRES_USER": SUPERUSER, "DAGSTER_POSTGRES_PASSWORD": postgres_server.password,
        "DAGSTER_POSTGRES_DB": database,
        # The code server answers a run's launch once the run's process has loaded the job: over
        # Dagster's 60 s gRPC deadline at load 18 (seen), and the run is then failed unlaunched.
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "180",
    }  # fmt: skip
    for name in ("REDSET_RAW_DIR", "REDSET_WAREHOUSE", "REDSET_SERVING_DIR", "REDSET_DEAD_LETTER_DIR"):
        env.pop(name, None)
    # Off: the first tick's run of every freshness check would be one more run worker on the two cores.
    with settings.environment(env), dg.DagsterInstance.get() as instance:
        switch_sensors(instance, freshness_checks_sensor=False)
    generator.write(generator.generate(3_000, seed=41, start=date(2024, 3, 1), days=1), tmp_path / "rows.parquet")
    assert producer.produce(tmp_path / "rows.parquet", kafka_topic, bootstrap=kafka_broker, progress=False).errors == 0

    port = free_ports(1)[0]
    log_path = tmp_path / "dagster_dev.log"
    with log_path.open("wb") as log:
        dev = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline, runs = time.monotonic() + WAIT_S, {}
        while time.monotonic() < deadline:
            runs = graphql_runs(port)
            failed = [r for r in runs.values() if r["jobName"] in JOBS and r["status"] == "FAILURE"]
            assert not failed, f"{failed}; dagster dev's log:\n{log_path.read_text()[-4000:]}"
            if set(JOBS) <= set(runs) and all(runs[j]["status"] in WANTED[j] for j in JOBS):
                break
            assert dev.poll() is None, log_path.read_text()[-4000:]
            time.sleep(1)
        else:
            raise AssertionError(f"not {WANTED} in GraphQL: {runs}; log:\n{log_path.read_text()[-4000:]}")
    finally:
        # Its code server and their run workers are in its process group (Dagster starts them without a
        # session of their own) and hear the SIGTERM; one still winding down must not outlive the test.
        daemons.terminate(dev.pid, 60, group=True)
        daemons.send_signal(dev.pid, signal.SIGKILL, group=True)
        dev.wait()

    # Launched by the daemon's sensors; the runs the webserver listed are the ones in Postgres, and
    # the build's worker wrote its start there. No SQLite run storage was made.
    for job, sensor in JOBS.items():
        assert {t["key"]: t["value"] for t in runs[job]["tags"]}.get("dagster/sensor_name") == sensor
    build = runs["build_marts_job"]["runId"]
    with psycopg.connect(postgres_server.url(database)) as con:
        stored = dict(con.execute("SELECT run_id, pipeline_name FROM runs").fetchall())
        build_events = {r[0] for r in con.execute("SELECT dagster_event_type FROM event_logs WHERE run_id = %s", [build])}
    assert {runs[j]["runId"]: j for j in JOBS}.items() <= stored.items()
    # Written by the build's worker process (stored under the event type's old name, PIPELINE_START).
    assert dg.DagsterEventType.RUN_START.value in build_events, build_events
    assert not list(home.glob("storage/**/*.db")), sorted(p.name for p in home.rglob("*.db"))
