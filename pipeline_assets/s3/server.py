"""The local S3-compatible server: S3Proxy (Apache-2.0) with its filesystem backend, one JVM on 127.0.0.1.

    redset s3 fetch     # the pinned S3Proxy jar from Maven Central (once; cached)
    redset s3 start     # 127.0.0.1:9000 (or --port / REDSET_S3_PORT), bucket `redset`; waits until it answers
    redset s3 status    # running or not, pid, port, log, and the AWS_* lines to export
    redset s3 stop      # SIGTERM, then SIGKILL after a timeout

A home (default `.s3/`, REDSET_S3_HOME) holds, as the broker's does:

    jars/<version>/       the shaded S3Proxy jar (shared by every home of the default one)
    credentials           the server's secret key, made once (mode 600)
    aws.env               the four AWS_* exports for this server (mode 600: it holds the secret)
    config/s3proxy.properties   rewritten on each start (mode 600)
    data/<bucket>/        the objects: a bucket is a folder, kept across restarts
    logs/server.log       the JVM's output
    server.json           pid and port of the running server

The access key and secret are local development credentials, still never printed unless asked
(`redset s3 status --show-secret`): clients read them from AWS_* like any S3 credentials.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.runtime import daemons, jvm
from pipeline_assets.runtime.ports import free_ports, port_in_use

POM = Path(__file__).with_name("pom.xml")
MAIN_CLASS = "org.gaul.s3proxy.Main"
MIN_JAVA = 17  # S3Proxy 3's jar says Java-Version: 17
HEAP = "256m"
DEFAULT_PORT = 9000
ACCESS_KEY = "redset-local"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
INSTALL_HINT = (
    "Install a Java 17+ runtime and Maven (`make java`; Debian/Ubuntu: `apt-get install openjdk-17-jre-headless maven`)."
)


class ServerError(RuntimeError):
    """The S3 server cannot be fetched, started or stopped; the message says why and what to do."""


def _version() -> str:
    node = ET.parse(POM).getroot().find("m:properties/m:s3proxy.version", {"m": "http://maven.apache.org/POM/4.0.0"})
    if node is None or not (node.text or "").strip():
        raise ServerError(f"{POM} has no <s3proxy.version> property")
    return node.text.strip()


VERSION = _version()


def default_home() -> Path:
    value = os.environ.get("REDSET_S3_HOME", "").strip()
    return Path(value).expanduser().resolve() if value else settings.PROJECT_ROOT / ".s3"


def default_port() -> int:
    value = os.environ.get("REDSET_S3_PORT", "").strip()
    return int(value) if value else DEFAULT_PORT


def default_bucket() -> str:
    return os.environ.get("REDSET_S3_BUCKET", "").strip() or "redset"


def jar_dir() -> Path:
    return default_home() / "jars" / VERSION


@dataclass(frozen=True)
class Server:
    """A running local S3 server."""

    pid: int
    port: int
    home: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "server.log"

    def environment(self) -> dict[str, str]:
        """The AWS_* variables a client of this server needs (the secret included)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": _secret(self.home),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
        }


def _home(home: str | Path | None) -> Path:
    return Path(home).expanduser().resolve() if home is not None else default_home()


def _private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _secret(home: Path) -> str:
    path = home / "credentials"
    if not path.exists():
        _private_file(path, secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


def _java() -> str:
    java = jvm.find_tool("java")
    if java is None:
        raise ServerError(f"`java` was not found on PATH; S3Proxy {VERSION} needs Java {MIN_JAVA}+. {INSTALL_HINT}")
    major = jvm.java_major(java)
    if major is not None and major < MIN_JAVA:
        raise ServerError(f"S3Proxy {VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major}. {INSTALL_HINT}")
    return java


def _mvn() -> str:
    mvn = jvm.find_tool("mvn")
    if mvn is None:
        raise ServerError(f"`mvn` was not found on PATH; it fetches the S3Proxy jar. {INSTALL_HINT}")
    return mvn


def fetch_jar(quiet: bool = False) -> Path:
    """The shaded S3Proxy jar from Maven Central into `jar_dir()` once."""
    try:
        return jvm.copy_dependencies(_mvn, POM, jar_dir(), f"S3Proxy {VERSION}", "s3proxy-*.jar", quiet=quiet)
    except jvm.FetchError as exc:
        raise ServerError(str(exc)) from exc


def _properties(home: Path, port: int) -> str:
    return "\n".join([
        f"s3proxy.endpoint=http://127.0.0.1:{port}",
        "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={ACCESS_KEY}",
        f"s3proxy.credential={_secret(home)}",
        # filesystem-nio2 replaces the deprecated `filesystem`; the basedir key is still jclouds'.
        "jclouds.provider=filesystem-nio2",
        f"jclouds.filesystem.basedir={home / 'data'}",
        "",
    ])  # fmt: skip


def running(home: str | Path | None = None) -> Server | None:
    """The server recorded in `home`, if it still runs (a stale record is removed)."""
    home = _home(home)
    path = home / "server.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    server = Server(int(state["pid"]), int(state["port"]), home)
    if daemons.runs(server.pid, MAIN_CLASS):
        return server
    path.unlink(missing_ok=True)
    return None


def answers(endpoint: str) -> bool:
    """True when an HTTP server answers at `endpoint` (S3Proxy refuses an anonymous GET: 403)."""
    try:
        urllib.request.urlopen(endpoint, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def start(
    port: int | None = None, home: str | Path | None = None, bucket: str | None = None, quiet: bool = False
) -> Server:
    """Start the server (unless it runs), make `bucket` (a folder of the data), wait until it answers."""
    say = (lambda *a, **k: None) if quiet else print
    home = _home(home)
    current = running(home)
    if current is not None:
        say(f"S3Proxy is already running on {current.endpoint} (pid {current.pid}); log: {current.log_file}")
        return current
    port = port or default_port()
    if port_in_use(port):
        raise ServerError(
            f"port {port} on 127.0.0.1 is taken by another process; choose another with --port or REDSET_S3_PORT"
        )
    java = _java()
    jar = fetch_jar(quiet=True)
    (home / "data" / (bucket or default_bucket())).mkdir(parents=True, exist_ok=True)
    config = home / "config" / "s3proxy.properties"
    _private_file(config, _properties(home, port))
    say(f"Starting S3Proxy {VERSION} on 127.0.0.1:{port} (home {home}) ...", flush=True)
    started = time.monotonic()
    cmd = [java, f"-Xmx{HEAP}", "-XX:+UseSerialGC", "-cp", str(jar / "*"), MAIN_CLASS, "--properties", str(config)]
    proc = daemons.spawn(cmd, cwd=home, log=home / "logs" / "server.log")
    server = Server(proc.pid, port, home)
    (home / "server.json").write_text(json.dumps({"pid": proc.pid, "port": port}))
    outcome = daemons.wait_ready(proc, lambda: answers(server.endpoint), START_TIMEOUT_S, interval=0.3)
    if outcome == "exited":
        (home / "server.json").unlink(missing_ok=True)
        raise ServerError(
            f"S3Proxy exited with status {proc.returncode} while starting. Last lines of {server.log_file}:\n"
            f"{daemons.tail(server.log_file)}"
        )
    if outcome == "timeout":
        stop(home, quiet=True)
        raise ServerError(
            f"S3Proxy did not answer on {server.endpoint} within {START_TIMEOUT_S:.0f}s; see {server.log_file}"
        )
    _private_file(home / "aws.env", "".join(f"export {k}={v}\n" for k, v in server.environment().items()))
    seconds = time.monotonic() - started
    say(f"S3Proxy {VERSION} is up on {server.endpoint} (pid {proc.pid}, {seconds:.1f}s); log: {server.log_file}")
    return server


def start_on_free_port(home: str | Path, bucket: str | None = None, attempts: int = 3) -> Server:
    """A quiet server in `home` on a free port (tests); retried, as another process may take the port first."""
    error: ServerError | None = None
    for _ in range(attempts):
        try:
            return start(port=free_ports(1)[0], home=home, bucket=bucket, quiet=True)
        except ServerError as exc:
            error = exc
    raise ServerError(f"could not start S3Proxy on a free port in {home}: {error}")


def stop(home: str | Path | None = None, quiet: bool = False) -> bool:
    """SIGTERM, SIGKILL after a timeout. False when no server was running."""
    say = (lambda *a, **k: None) if quiet else print
    home = _home(home)
    server = running(home)
    if server is None:
        say(f"S3Proxy is not running (home {home})")
        return False
    daemons.terminate(server.pid, STOP_TIMEOUT_S)
    (home / "server.json").unlink(missing_ok=True)
    say(f"S3Proxy stopped (pid {server.pid})")
    return True


def status(home: str | Path | None = None, show_secret: bool = False) -> Server | None:
    """Print whether the server runs, its pid, port, log, and the AWS_* lines (the secret only if asked)."""
    home = _home(home)
    server = running(home)
    if server is None:
        print(f"S3Proxy {VERSION}: not running (home {home}; start it with `redset s3 start`)")
        return None
    print(f"S3Proxy {VERSION}: running, {'answers' if answers(server.endpoint) else 'NOT answering yet'}")
    print(f"pid:  {server.pid}\nport: {server.port}\nlog:  {server.log_file}\ndata: {home / 'data'}")
    print(f"# for clients (REDSET_STORAGE_URL=s3://{default_bucket()}/...), or `source {home / 'aws.env'}`:")
    for name, value in server.environment().items():
        if name == "AWS_SECRET_ACCESS_KEY" and not show_secret:
            print(f"# export {name}=...   (hidden; `redset s3 status --show-secret` prints it)")
        else:
            print(f"export {name}={value}")
    return server
