"""The local Spark standalone cluster: one master and N workers on 127.0.0.1, JVMs started from
pyspark's own `spark-class` (no separate Spark download).

    redset spark start    # master spark://127.0.0.1:7077, UI http://127.0.0.1:8090, 2 workers
    redset spark status   # master URL, UI URL, pids, ALIVE workers
    redset spark stop     # SIGTERM to every daemon's process group (executors too), SIGKILL after a timeout

Python callers (tests, benches) use `start_cluster(state_dir)`: the same cluster on free ports.

A cluster home (default `settings.spark_home()`, i.e. `.spark/`) holds:

    conf/spark-defaults.conf   the daemons' settings, rewritten on each start
    logs/master.log            each daemon's log (logs/worker-<n>.log)
    work/                      executors' folders: work/<app-id>/<executor-id>/stderr
    cluster.json               pids and ports of the running cluster

Each daemon leads its own process group; the executors a worker starts join it, so stopping the
group leaves no executor JVM behind. How a daemon is launched: launch.py; the master's JSON: master.py.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_assets import settings
from pipeline_assets.runtime import daemons
from pipeline_assets.runtime.ports import free_ports, port_in_use
from pipeline_assets.spark import launch
from pipeline_assets.spark.launch import HOST, ClusterError
from pipeline_assets.spark.master import answers, master_state, ready

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SparkCluster:
    """A running local cluster."""

    home: Path
    master_pid: int
    master_port: int
    ui_port: int
    worker_pids: tuple[int, ...]
    worker_cores: int
    worker_memory: str

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    def state(self) -> dict[str, Any]:
        """The master's JSON status (workers, applications); raises OSError when it does not answer."""
        return master_state(self.ui_url)

    def alive_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.state()["workers"] if w["state"] == "ALIVE"]

    def session_conf(self) -> dict[str, str]:
        """SparkSession settings for an application on this cluster: executors sized to fit a worker
        (Spark's default 1g would never be granted by a 512m worker), driver on 127.0.0.1."""
        return {
            "spark.master": self.master_url,
            "spark.executor.memory": self.worker_memory,
            "spark.executor.cores": str(self.worker_cores),
            "spark.driver.host": HOST,
            "spark.driver.bindAddress": HOST,
        }

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        return stop(self.home, timeout=timeout, quiet=True)


# ---------------------------------------------------------------------------------------------
# Paths, processes and the master's status


def _home(home: str | Path | None) -> Path:
    return Path(home).expanduser().resolve() if home is not None else settings.spark_home()


def _state_file(home: Path) -> Path:
    return home / "cluster.json"


def running(home: str | Path | None = None) -> SparkCluster | None:
    """The cluster recorded in `home`, if its master still runs (workers that died are left out)."""
    home = _home(home)
    try:
        state = json.loads(_state_file(home).read_text())
    except (OSError, ValueError):
        return None
    if not daemons.runs(state["master_pid"], launch.MASTER_CLASS):
        return None
    return SparkCluster(
        home=home,
        master_pid=state["master_pid"],
        master_port=state["master_port"],
        ui_port=state["ui_port"],
        worker_pids=tuple(p for p in state["worker_pids"] if daemons.runs(p, launch.WORKER_CLASS)),
        worker_cores=state["worker_cores"],
        worker_memory=state["worker_memory"],
    )


def _silent(*args: object, **kwargs: object) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# The three verbs


def start(
    home: str | Path | None = None,
    workers: int | None = None,
    worker_cores: int | None = None,
    worker_memory: str | None = None,
    master_port: int | None = None,
    ui_port: int | None = None,
    timeout: float = START_TIMEOUT_S,
    quiet: bool = False,
) -> SparkCluster:
    """Start a master and `workers` workers (if no cluster runs in `home`) and wait until the
    master lists every worker ALIVE on 127.0.0.1. Defaults come from settings (REDSET_SPARK_*)."""
    say = _silent if quiet else print
    home = _home(home)
    current = running(home)
    if current is not None:
        say(f"Spark is already running: {current.master_url} (UI {current.ui_url}); logs: {current.log_dir}")
        return current
    stop(home, quiet=True)  # workers a crashed master left behind

    workers = settings.spark_workers() if workers is None else workers
    worker_cores = worker_cores or settings.spark_worker_cores()
    worker_memory = worker_memory or settings.spark_worker_memory()
    master_port = master_port or settings.spark_master_port()
    ui_port = ui_port or settings.spark_ui_port()
    for port, role in ((master_port, "master"), (ui_port, "master web UI")):
        if port_in_use(port):
            raise ClusterError(
                f"port {port} (the Spark {role} port) on 127.0.0.1 is taken by another process; "
                "choose another with REDSET_SPARK_PORT / REDSET_SPARK_UI_PORT"
            )
    for sub in ("conf", "logs", "work"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "conf" / "spark-defaults.conf").write_text(launch.DEFAULTS_CONF)
    env = launch.daemon_env(home)

    say(f"Starting Spark master and {workers} workers ({worker_cores} cores, {worker_memory} each) in {home} ...",
        flush=True)  # fmt: skip
    started = time.monotonic()
    master = daemons.spawn(
        launch.spark_class(launch.MASTER_CLASS, "--host", HOST, "--port", str(master_port), "--webui-port", str(ui_port)),
        cwd=home, log=home / "logs" / "master.log", env=env,
    )  # fmt: skip
    cluster = SparkCluster(home, master.pid, master_port, ui_port, (), worker_cores, worker_memory)
    _write_state(cluster)
    # Workers give up registering after a few tries: start them once the master answers.
    _wait(cluster, 0, timeout, started)
    worker_pids = []
    for n in range(1, workers + 1):
        worker = daemons.spawn(
            launch.spark_class(
                launch.WORKER_CLASS, "--host", HOST, "--port", "0", "--webui-port", "0",  # any free port, read back from the master
                "--cores", str(worker_cores), "--memory", worker_memory, "--work-dir", str(home / "work"),
                cluster.master_url,
            ),
            cwd=home, log=home / "logs" / f"worker-{n}.log", env=env,
        )  # fmt: skip
        worker_pids.append(worker.pid)
    cluster = SparkCluster(home, master.pid, master_port, ui_port, tuple(worker_pids), worker_cores, worker_memory)
    _write_state(cluster)
    _wait(cluster, workers, timeout, started)
    say(f"Spark is up in {time.monotonic() - started:.1f}s: {cluster.master_url}, UI {cluster.ui_url}, "
        f"{workers} workers ALIVE; logs: {cluster.log_dir}")  # fmt: skip
    return cluster


def _write_state(cluster: SparkCluster) -> None:
    state = {
        "master_pid": cluster.master_pid,
        "master_port": cluster.master_port,
        "ui_port": cluster.ui_port,
        "worker_pids": list(cluster.worker_pids),
        "worker_cores": cluster.worker_cores,
        "worker_memory": cluster.worker_memory,
    }
    _state_file(cluster.home).write_text(json.dumps(state, indent=2))


def _wait(cluster: SparkCluster, workers: int, timeout: float, started: float) -> None:
    """Until the master answers with `workers` ALIVE workers on 127.0.0.1; a daemon that exits or a
    timeout stops the cluster and raises with the log's last lines."""
    logs = {cluster.master_pid: "master.log"} | {p: f"worker-{n}.log" for n, p in enumerate(cluster.worker_pids, 1)}
    while not ready(state := answers(cluster.ui_url), workers):
        for pid, log in logs.items():
            if not daemons.is_alive(pid):
                stop(cluster.home, quiet=True)
                raise ClusterError(
                    f"the Spark daemon logging to {cluster.log_dir / log} exited while starting; its last lines:\n"
                    f"{daemons.tail(cluster.log_dir / log)}"
                )
        if time.monotonic() - started > timeout:
            stop(cluster.home, quiet=True)
            listed = [(w["host"], w["state"]) for w in state["workers"]] if state else "no answer"
            raise ClusterError(
                f"the Spark master at {cluster.ui_url} did not list {workers} ALIVE workers on {HOST} within "
                f"{timeout:.0f}s (workers: {listed}); see {cluster.log_dir}"
            )
        time.sleep(0.5)


def start_cluster(
    state_dir: str | Path,
    workers: int = 2,
    worker_cores: int = 1,
    worker_memory: str = "512m",
    timeout: float = START_TIMEOUT_S,
    attempts: int = 3,
) -> SparkCluster:
    """A quiet cluster in `state_dir` on free ports, never the shared 7077/8090: for tests and
    benchmarks beside other people's. Retried, as another process may take a port first.
    Stop it with `.stop()`."""
    error: ClusterError | None = None
    for _ in range(attempts):
        master_port, ui_port = free_ports(2)
        try:
            return start(state_dir, workers, worker_cores, worker_memory, master_port, ui_port, timeout, quiet=True)
        except ClusterError as exc:
            error = exc
    raise ClusterError(f"could not start a Spark cluster on free ports in {state_dir}: {error}")


def stop(home: str | Path | None = None, timeout: float = STOP_TIMEOUT_S, quiet: bool = False) -> bool:
    """Stop every daemon recorded in `home` with its process group (a worker's executors are in
    it): SIGTERM, SIGKILL after `timeout`. Returns False when nothing was running."""
    say = _silent if quiet else print
    home = _home(home)
    try:
        state = json.loads(_state_file(home).read_text())
    except (OSError, ValueError):
        say(f"Spark is not running (home {home})")
        return False
    recorded = [(p, launch.WORKER_CLASS) for p in state["worker_pids"]] + [(state["master_pid"], launch.MASTER_CLASS)]
    live = [pid for pid, main_class in recorded if daemons.runs(pid, main_class)]
    if live:
        say(f"Stopping Spark (pids {', '.join(map(str, live))}) ...", flush=True)
    started = time.monotonic()
    for pid in live:
        daemons.send_signal(pid, signal.SIGTERM, group=True)  # all at once; then wait for each
    left = lambda: max(0.0, started + timeout - time.monotonic())  # noqa: E731  one deadline, not one per daemon
    forced = [pid for pid in live if not daemons.terminate(pid, left(), group=True)]
    # Executors still ending (they had the SIGTERM too), or left by a worker that crashed.
    for pid in daemons.group_members([pid for pid, _ in recorded]):
        if "org.apache.spark" in daemons.command_line(pid) and not daemons.terminate(pid, left()):
            forced.append(pid)
    _state_file(home).unlink(missing_ok=True)
    if forced:
        say(f"pids {forced} did not stop within {timeout:.0f}s; killed them")
    say(f"Spark stopped in {time.monotonic() - started:.1f}s" if live else f"Spark was not running (home {home})")
    return bool(live)


def status(home: str | Path | None = None) -> SparkCluster | None:
    """Print the master URL, the UI URL, the pids and the ALIVE workers; return the cluster when it runs."""
    home = _home(home)
    cluster = running(home)
    if cluster is None:
        print(f"Spark: not running (home {home})")
        print(f"logs:    {home / 'logs'}")
        return None
    state = answers(cluster.ui_url)
    alive = [w for w in state["workers"] if w["state"] == "ALIVE"] if state else []
    print(f"Spark: running, master {state['status'] if state else 'NOT answering'}")
    print(f"master:  {cluster.master_url} (pid {cluster.master_pid})")
    print(f"UI:      {cluster.ui_url}")
    print(f"workers: {len(alive)} ALIVE (pids {', '.join(map(str, cluster.worker_pids)) or 'none'})")
    for w in alive:
        print(f"  {w['host']}:{w['port']}  {w['cores']} cores, {w['memory']} MB, UI {w['webuiaddress']}")
    print(f"logs:    {cluster.log_dir}")
    return cluster
