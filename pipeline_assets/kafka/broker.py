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

The jars are shared by every home: `settings.kafka_home()/jars/<version>/`, so a test broker in a
temporary home does not download them again.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from pipeline_assets import settings
from pipeline_assets.durable import pid_alive

POM = Path(__file__).with_name("pom.xml")
DEFAULT_PORT = 9092
HEAP = "512m"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
MIN_JAVA = 17

INSTALL_HINT = (
    "Install a Java 17+ runtime and Maven (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless maven`; "
    "macOS: `brew install openjdk@17 maven`), or run Kafka in Docker instead: "
    "`docker compose -f docker/kafka.yaml up -d` (see docker/)."
)

# Processes this Python process started, so that stop() can reap them (no zombies in tests).
_children: dict[int, subprocess.Popen] = {}


class BrokerError(RuntimeError):
    """The broker cannot be fetched, started or stopped; the message says why and what to do."""


def _pom_property(name: str) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(POM).getroot().find(f"m:properties/m:{name}", ns)
    if node is None or not (node.text or "").strip():
        raise BrokerError(f"{POM} has no <{name}> property")
    return node.text.strip()


# The one pin of the Kafka version lives in pom.xml.
KAFKA_VERSION = _pom_property("kafka.version")


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


def jar_dir() -> Path:
    """The shared jar cache of the pinned version."""
    return settings.kafka_home() / "jars" / KAFKA_VERSION


def default_port() -> int:
    value = os.environ.get("REDSET_KAFKA_PORT", "").strip()
    return int(value) if value else DEFAULT_PORT


def _log_file(home: Path) -> Path:
    return home / "logs" / "server.log"


def _state_file(home: Path) -> Path:
    return home / "broker.json"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if tool == "java" and path is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        path = str(candidate) if candidate.exists() else None
    if path is None:
        raise BrokerError(f"`{tool}` was not found on PATH. {INSTALL_HINT}")
    return path


def _java() -> str:
    java = _require("java")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match:
        # Java 8 and older call themselves "1.8".
        major = int(match.group(2) or 0) if match.group(1) == "1" else int(match.group(1))
        if major < MIN_JAVA:
            raise BrokerError(
                f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major}. {INSTALL_HINT}"
            )
    return java


# ---------------------------------------------------------------------------------------------
# Jars


def jars_cached() -> bool:
    return (jar_dir() / ".complete").exists()


def fetch_jars(quiet: bool = False) -> Path:
    """Copy the pinned Kafka jars from Maven Central into `jar_dir()` once; later calls return at once."""
    target = jar_dir()
    done = target / ".complete"  # written last: a folder without it is incomplete
    if done.exists():
        if not quiet:
            print(f"Kafka {KAFKA_VERSION} jars are cached in {target}")
        return target
    mvn = _require("mvn")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Several test sessions may start at once: one fetches, the others wait for it.
    with FileLock(target.parent / ".fetch.lock"):
        if done.exists():
            return target
        if not quiet:
            print(f"Fetching Kafka {KAFKA_VERSION} jars from Maven Central into {target} ...", flush=True)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{KAFKA_VERSION}-", dir=target.parent))
        cmd = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM),
            "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not list(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(
                f"mvn could not fetch the Kafka jars (exit {result.returncode}); is Maven Central reachable?\n"
                f"{' '.join(cmd)}\n{(result.stdout + result.stderr).strip()[-3000:]}"
            )
        shutil.rmtree(target, ignore_errors=True)  # a half-copied folder from an older, broken run
        staging.rename(target)
        done.write_text(f"{KAFKA_VERSION}\n")
        if not quiet:
            count = len(list(target.glob("*.jar")))
            print(f"Fetched {count} jars in {time.monotonic() - started:.1f}s")
    return target


# ---------------------------------------------------------------------------------------------
# Processes


def _is_alive(pid: int) -> bool:
    if pid in _children:
        return _children[pid].poll() is None  # our child: poll() also reaps it
    return pid_alive(pid)


def _is_kafka(pid: int) -> bool:
    """Guards against a stale pid file whose pid now belongs to another program."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"kafka.Kafka" in cmdline.read_bytes()
        except OSError:
            return False
    ps = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return "kafka.Kafka" in ps.stdout


def running(home: str | Path | None = None) -> Broker | None:
    """The broker recorded in `home`, if it is still running (silent; a stale record is removed)."""
    home = _home(home)
    path = _state_file(home)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    broker = Broker(int(state["pid"]), int(state["port"]), int(state["controller_port"]), home)
    if _is_alive(broker.pid) and _is_kafka(broker.pid):
        return broker
    path.unlink(missing_ok=True)
    return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Java listens with SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _silent(*args: object, **kwargs: object) -> None:
    pass


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} is missing)"


# ---------------------------------------------------------------------------------------------
# Configuration and storage


def _cluster_id(home: Path) -> str:
    path = home / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    while True:
        # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, no padding, not starting with "-".
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            break
    path.write_text(cluster_id + "\n")
    return cluster_id


def _server_properties(home: Path, port: int, controller_port: int) -> str:
    # Settings for one laptop: a single replica of everything, topics created on purpose only.
    return f"""\
# Written by pipeline_assets/kafka/broker.py on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={home / "data"}

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Above the raw dump's REDSET_MAX_MESSAGE_BYTES (1 MiB), so an oversized message reaches the dump and
# becomes a dead letter there, where it is counted, instead of being refused to its producer.
message.max.bytes=8388608

# Keep a month of replay (by the time a message arrived at the broker) and at most 1 GB segments.
log.retention.hours=720
log.retention.bytes=-1
log.segment.bytes=1073741824

num.network.threads=2
num.io.threads=4
"""


def _log4j_properties(home: Path) -> str:
    logs = home / "logs"
    return f"""\
# Written by pipeline_assets/kafka/broker.py on every start.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs / "server.log"}
appender.file.filePattern = {logs / "server.log.%i"}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def _java_cmd(java: str, home: Path, heap: str, short_lived: bool = False) -> list[str]:
    # A short-lived tool starts faster with the simple JIT and GC; the broker wants the full ones.
    if short_lived:
        tuning = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    else:
        tuning = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    return [
        java, f"-Xmx{heap}", "-Xms128m", *tuning, "-Djava.awt.headless=true",
        # Kafka logs from its own shutdown hook; log4j2 must not close the log file before that.
        "-Dlog4j2.shutdownHookEnabled=false",
        f"-Dlog4j2.configurationFile={home / 'config' / 'log4j2.properties'}",
        "-cp", str(jar_dir() / "*"),
    ]  # fmt: skip


def _format_storage(java: str, home: Path) -> None:
    """Format the log dirs once; a formatted home keeps its topics across restarts."""
    if (home / "data" / "meta.properties").exists():
        return
    cmd = _java_cmd(java, home, "256m", short_lived=True) + [
        "kafka.tools.StorageTool", "format", "--ignore-formatted",
        "-t", _cluster_id(home), "-c", str(home / "config" / "server.properties"),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerError(f"formatting {home / 'data'} failed:\n{(result.stdout + result.stderr).strip()[-3000:]}")


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
        if _port_in_use(p):
            raise BrokerError(
                f"port {p} (the broker's {role} port) on 127.0.0.1 is taken by another process; "
                "choose another with --port or REDSET_KAFKA_PORT"
            )
    java = _java()
    if not jars_cached():
        fetch_jars(quiet=quiet)  # the first start downloads them

    for sub in ("config", "data", "logs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "config" / "server.properties").write_text(_server_properties(home, port, controller_port))
    (home / "config" / "log4j2.properties").write_text(_log4j_properties(home))
    _format_storage(java, home)

    say(f"Starting Kafka {KAFKA_VERSION} on 127.0.0.1:{port} (home {home}) ...", flush=True)
    started = time.monotonic()
    cmd = _java_cmd(java, home, HEAP) + ["kafka.Kafka", str(home / "config" / "server.properties")]
    with open(home / "logs" / "jvm.log", "ab") as jvm_log:
        # A new session: the broker outlives this command and ignores the terminal's Ctrl-C.
        proc = subprocess.Popen(
            cmd, cwd=home, stdin=subprocess.DEVNULL, stdout=jvm_log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _children[proc.pid] = proc
    broker = Broker(proc.pid, port, controller_port, home)
    _state_file(home).write_text(json.dumps({"pid": proc.pid, "port": port, "controller_port": controller_port}))

    while not _answers(broker.bootstrap):
        if proc.poll() is not None:
            _state_file(home).unlink(missing_ok=True)
            raise BrokerError(
                f"Kafka exited with status {proc.returncode} while starting. Last lines of {broker.log_file}:\n"
                f"{_tail(broker.log_file)}\n{_tail(home / 'logs' / 'jvm.log', 10)}"
            )
        if time.monotonic() - started > timeout:
            stop(home, quiet=True)
            raise BrokerError(
                f"Kafka did not answer on {broker.bootstrap} within {timeout:.0f}s; see {broker.log_file}"
            )
        time.sleep(0.5)
    say(f"Kafka {KAFKA_VERSION} is up on {broker.bootstrap} (pid {proc.pid}, {time.monotonic() - started:.1f}s); "
        f"log: {broker.log_file}")  # fmt: skip
    return broker


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


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
    _signal(broker.pid, signal.SIGTERM)  # a controlled shutdown: logs closed cleanly, no recovery at start
    if not _wait_exit(broker.pid, timeout):
        say(f"Kafka did not stop within {timeout:.0f}s; killing it")
        _signal(broker.pid, signal.SIGKILL)
        _wait_exit(broker.pid, 10)
    _children.pop(broker.pid, None)
    _state_file(home).unlink(missing_ok=True)
    say(f"Kafka stopped in {time.monotonic() - started:.1f}s")
    return True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it exited on its own meanwhile


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
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

