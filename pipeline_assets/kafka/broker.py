"""The local Apache Kafka broker: one JVM in KRaft mode, broker and controller in one, on 127.0.0.1.

    redset kafka fetch    # the pinned Kafka jars from Maven Central (once; cached)
    redset kafka start    # 127.0.0.1:9092 (or --port / REDSET_KAFKA_PORT); waits until it answers
    redset kafka status   # running or not, pid, port, log file
    redset kafka stop     # SIGTERM, then SIGKILL after a timeout

The same functions serve Python callers (tests, the demo): `start()` returns a `Broker` whose
`bootstrap` is the address clients use.

A broker home (default `settings.kafka_home()`, i.e. `.kafka/`) holds:

    cluster.id                KRaft cluster id, made once
    config/                   server.properties and log4j2.properties, rewritten on each start
    data/                     topics and the metadata log; formatted once, kept across restarts
    logs/server.log           the broker's log (logs/jvm.log: the JVM's own output)
    broker.json               pid and ports of the running broker

The jars (kafka/jars.py) are shared by every home: `settings.kafka_home()/jars/<version>/`, so a
test broker in a temporary home does not download them again. The config files and the storage
format are kafka/broker_config.py's.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.kafka.broker_config import format_storage, log4j_properties, server_properties
from pipeline_assets.kafka.jars import KAFKA_VERSION, BrokerError, fetch_jars, jars_cached, java, java_cmd
from pipeline_assets.runtime import daemons
from pipeline_assets.runtime.ports import free_ports, port_in_use

HEAP = "512m"
DEFAULT_PORT = 9092
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0

def default_port() -> int:
    value = os.environ.get("REDSET_KAFKA_PORT", "").strip()
    return int(value) if value else DEFAULT_PORT


@dataclass(frozen=True)
class Broker:
    """A running local broker."""

    pid: int
    port: int
    controller_port: int
    home: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return _log_file(self.home)


# ---------------------------------------------------------------------------------------------
# Paths and settings


def _home(home: str | Path | None) -> Path:
    return Path(home).expanduser().resolve() if home is not None else settings.kafka_home()


def _log_file(home: Path) -> Path:
    return home / "logs" / "server.log"


def _state_file(home: Path) -> Path:
    return home / "broker.json"


# ---------------------------------------------------------------------------------------------
# Processes


def running(home: str | Path | None = None) -> Broker | None:
    """The broker recorded in `home`, if it is still running (silent; a stale record is removed)."""
    home = _home(home)
    path = _state_file(home)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    broker = Broker(int(state["pid"]), int(state["port"]), int(state["controller_port"]), home)
    if daemons.runs(broker.pid, "kafka.Kafka"):
        return broker
    path.unlink(missing_ok=True)
    return None


def _silent(*args: object, **kwargs: object) -> None:
    pass


def _answers(bootstrap: str) -> bool:
    """True when the broker answers a metadata request and lists itself."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False  # not listening yet: skip the client, which would log connection errors
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=3)
    except KafkaException:
        return False
    return bool(metadata.brokers)


# ---------------------------------------------------------------------------------------------
# The three verbs


def start(
    port: int | None = None,
    home: str | Path | None = None,
    controller_port: int | None = None,
    timeout: float = START_TIMEOUT_S,
    quiet: bool = False,
) -> Broker:
    """Start the broker (if it is not running) and wait until it answers a metadata request.

    `port` defaults to REDSET_KAFKA_PORT or 9092, `controller_port` to the port after it.
    """
    say = _silent if quiet else print
    home = _home(home)
    current = running(home)
    if current is not None:
        say(f"Kafka is already running on {current.bootstrap} (pid {current.pid}); log: {current.log_file}")
        return current

    port = port or default_port()
    controller_port = controller_port or port + 1
    for p, role in ((port, "listener"), (controller_port, "controller")):
        if port_in_use(p):
            raise BrokerError(
                f"port {p} (the broker's {role} port) on 127.0.0.1 is taken by another process; "
                "choose another with --port or REDSET_KAFKA_PORT"
            )
    java_path = java()
    if not jars_cached():
        fetch_jars(quiet=quiet)  # the first start downloads them

    for sub in ("config", "data", "logs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "config" / "server.properties").write_text(server_properties(home, port, controller_port))
    (home / "config" / "log4j2.properties").write_text(log4j_properties(home))
    format_storage(java_path, home)

    say(f"Starting Kafka {KAFKA_VERSION} on 127.0.0.1:{port} (home {home}) ...", flush=True)
    started = time.monotonic()
    cmd = java_cmd(java_path, home, HEAP) + ["kafka.Kafka", str(home / "config" / "server.properties")]
    proc = daemons.spawn(cmd, cwd=home, log=home / "logs" / "jvm.log")
    broker = Broker(proc.pid, port, controller_port, home)
    _state_file(home).write_text(json.dumps({"pid": proc.pid, "port": port, "controller_port": controller_port}))

    outcome = daemons.wait_ready(proc, lambda: _answers(broker.bootstrap), timeout, interval=0.5)
    if outcome == "exited":
        _state_file(home).unlink(missing_ok=True)
        raise BrokerError(
            f"Kafka exited with status {proc.returncode} while starting. Last lines of {broker.log_file}:\n"
            f"{daemons.tail(broker.log_file)}\n{daemons.tail(home / 'logs' / 'jvm.log', 10)}"
        )
    if outcome == "timeout":
        stop(home, quiet=True)
        raise BrokerError(f"Kafka did not answer on {broker.bootstrap} within {timeout:.0f}s; see {broker.log_file}")
    say(f"Kafka {KAFKA_VERSION} is up on {broker.bootstrap} (pid {proc.pid}, {time.monotonic() - started:.1f}s); "
        f"log: {broker.log_file}")  # fmt: skip
    return broker


def start_on_free_ports(home: str | Path, attempts: int = 3) -> Broker:
    """A quiet broker in `home` on free ports, never the shared 9092: for tests and benchmarks that
    run beside other people's. Retried, as another process may take a port before the broker binds."""
    error: BrokerError | None = None
    for _ in range(attempts):
        port, controller_port = free_ports(2)
        try:
            return start(port=port, controller_port=controller_port, home=home, quiet=True)
        except BrokerError as exc:
            error = exc
    raise BrokerError(f"could not start a Kafka broker on free ports in {home}: {error}")


def stop(home: str | Path | None = None, timeout: float = STOP_TIMEOUT_S, quiet: bool = False) -> bool:
    """Stop the broker gracefully (SIGTERM), forcefully (SIGKILL) after `timeout` seconds.

    Returns False when no broker was running.
    """
    say = _silent if quiet else print
    home = _home(home)
    broker = running(home)
    if broker is None:
        say(f"Kafka is not running (home {home})")
        return False
    say(f"Stopping Kafka (pid {broker.pid}) ...", flush=True)
    started = time.monotonic()
    # SIGTERM: a controlled shutdown, logs closed cleanly, no recovery at start.
    if not daemons.terminate(broker.pid, timeout):
        say(f"Kafka did not stop within {timeout:.0f}s; killed it")
    _state_file(home).unlink(missing_ok=True)
    say(f"Kafka stopped in {time.monotonic() - started:.1f}s")
    return True


def status(home: str | Path | None = None) -> Broker | None:
    """Print whether the broker runs, its pid, port and log file; return it when it runs."""
    home = _home(home)
    broker = running(home)
    if broker is None:
        print(f"Kafka {KAFKA_VERSION}: not running (home {home})")
        print(f"log:  {_log_file(home)}")
        return None
    answers = "answers metadata requests" if _answers(broker.bootstrap) else "NOT answering yet"
    print(f"Kafka {KAFKA_VERSION}: running, {answers}")
    print(f"pid:  {broker.pid}")
    print(f"port: {broker.port} (bootstrap {broker.bootstrap}; controller port {broker.controller_port})")
    print(f"log:  {broker.log_file}")
    return broker

