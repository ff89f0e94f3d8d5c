"""The pinned Kafka jars (fetched from Maven Central once, shared by every broker home) and the
Java that runs them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.runtime import jvm

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
    path = jvm.find_tool(tool)
    if path is None:
        raise BrokerError(f"`{tool}` was not found on PATH. {INSTALL_HINT}")
    return path


def java() -> str:
    java = require_tool("java")
    major = jvm.java_major(java)
    if major is not None and major < MIN_JAVA:
        raise BrokerError(f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major}. {INSTALL_HINT}")
    return java


def jars_cached() -> bool:
    return (jar_dir() / ".complete").exists()


def fetch_jars(quiet: bool = False) -> Path:
    """Copy the pinned Kafka jars from Maven Central into `jar_dir()` once; later calls return at once."""
    try:
        return jvm.copy_dependencies(
            lambda: require_tool("mvn"), POM, jar_dir(), f"Kafka {KAFKA_VERSION}", "kafka_2.13-*.jar", quiet=quiet
        )
    except jvm.FetchError as exc:
        raise BrokerError(str(exc)) from exc


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
