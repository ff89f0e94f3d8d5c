"""The pinned Kafka jars (fetched from Maven Central once, shared by every broker home) and the
Java that runs them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from filelock import FileLock

from pipeline_assets import settings

POM = Path(__file__).with_name("pom.xml")
MIN_JAVA = 17

INSTALL_HINT = (
    "Install a Java 17+ runtime and Maven (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless maven`; "
    "macOS: `brew install openjdk@17 maven`), or run Kafka in Docker instead: "
    "`docker compose -f docker/kafka.yaml up -d` (see docker/)."
)


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


def jar_dir() -> Path:
    """The shared jar cache of the pinned version."""
    return settings.kafka_home() / "jars" / KAFKA_VERSION


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if tool == "java" and path is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        path = str(candidate) if candidate.exists() else None
    if path is None:
        raise BrokerError(f"`{tool}` was not found on PATH. {INSTALL_HINT}")
    return path


def java() -> str:
    java = require_tool("java")
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
    mvn = require_tool("mvn")
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


def java_cmd(java: str, home: Path, heap: str, short_lived: bool = False) -> list[str]:
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
