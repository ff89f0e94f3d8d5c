"""The local Spark standalone cluster (pipeline_assets/spark/cluster.py), with real JVMs: a master
and two workers on 127.0.0.1, an application whose executors run in the workers' own JVMs, and a
stop that leaves none of them behind."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_assets.runtime import daemons
from pipeline_assets.spark import cluster as spark

pytestmark = [pytest.mark.slow(seconds=30), pytest.mark.timeout(300)]

# A driver in its own process (its JVM ends with it): a group-by on the cluster, then it waits on
# stdin so the test can look at the executors while the application runs.
APP = """
import json, sys
from pyspark.sql import SparkSession
conf = json.loads(sys.argv[1])
builder = SparkSession.builder.appName("redset-cluster-test")
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
rows = spark.range(1000).selectExpr("id % 7 AS k").groupBy("k").count().collect()
print(json.dumps({
    "counts": {r["k"]: r["count"] for r in rows},
    "app_id": spark.sparkContext.applicationId,
    "driver_pid": spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid(),
}), flush=True)
sys.stdin.readline()
spark.stop()
"""


def executor_pids(cluster: spark.SparkCluster, app_id: str) -> list[int]:
    """Executor JVMs of `app_id`: in a worker's process group, running the executor's main class."""
    return [
        pid
        for pid in daemons.group_members(cluster.worker_pids)
        if "CoarseGrainedExecutorBackend" in (cmd := daemons.command_line(pid)) and app_id in cmd
    ]


def test_cluster_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Start -> two workers ALIVE on 127.0.0.1 -> a group-by in executor JVMs -> stop while the
    application runs, and no JVM of the cluster is left."""
    cluster = spark.start_cluster(tmp_path, workers=2, worker_cores=1, worker_memory="512m")
    app = None
    try:
        state = cluster.state()
        assert state["status"] == "ALIVE" and state["url"] == cluster.master_url
        alive = cluster.alive_workers()
        assert {w["host"] for w in alive} == {"127.0.0.1"}
        assert [(w["cores"], w["memory"]) for w in alive] == [(1, 512), (1, 512)]
        assert len(cluster.worker_pids) == 2
        assert spark.running(tmp_path) == cluster
        assert spark.status(tmp_path) == cluster
        out = capsys.readouterr().out
        assert cluster.master_url in out and cluster.ui_url in out and "workers: 2 ALIVE" in out

        conf = cluster.session_conf() | {
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            # The job starts once both executors have registered, so each worker runs one.
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
        }
        app = subprocess.Popen(
            [sys.executable, "-c", APP, json.dumps(conf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = app.stdout.readline()
        assert line, f"the driver exited with {app.wait()}"
        result = json.loads(line)
        assert {int(k): v for k, v in result["counts"].items()} == {k: len(range(k, 1000, 7)) for k in range(7)}
        (app_state,) = [a for a in cluster.state()["activeapps"] if a["id"] == result["app_id"]]
        assert app_state["cores"] == 2 and app_state["memoryperexecutor"] == 512
        executors = executor_pids(cluster, result["app_id"])
        assert len(executors) == 2  # one JVM per worker
        assert result["driver_pid"] not in executors and not set(executors) & set(cluster.worker_pids)

        ours = [cluster.master_pid, *cluster.worker_pids, *executors]
        assert cluster.stop() is True
        assert [pid for pid in ours if daemons.is_alive(pid)] == []
        assert daemons.group_members([cluster.master_pid, *cluster.worker_pids]) == []
        assert spark.running(tmp_path) is None and not (tmp_path / "cluster.json").exists()
        assert cluster.stop() is False
    finally:
        cluster.stop()
        if app is not None:
            app.terminate()  # its JVM exits when the Python driver's pipe closes
            try:
                app.wait(timeout=60)
            except subprocess.TimeoutExpired:  # do not hide the test's own failure behind this one
                app.kill()


def test_taken_port_fails_before_starting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(spark.ClusterError, match=rf"port {port} \(the Spark master port\)"):
            spark.start(tmp_path, master_port=port, ui_port=port + 1 if port < 65535 else port - 1, quiet=True)
    assert not (tmp_path / "cluster.json").exists()
