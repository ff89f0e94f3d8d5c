"""The master's status: its JSON at <UI>/json/ (workers, applications), and whether a master answers."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any
from urllib.parse import urlparse

from pipeline_assets.spark.launch import HOST, ClusterError


def master_state(ui_url: str, timeout: float = 2.0) -> dict[str, Any]:
    """The master's JSON status at <ui_url>/json/."""
    with urllib.request.urlopen(f"{ui_url}/json/", timeout=timeout) as response:
        return json.load(response)


def answers(ui_url: str) -> dict[str, Any] | None:
    try:
        return master_state(ui_url)
    except (OSError, ValueError):  # URLError is an OSError; ValueError: half-started Jetty
        return None


def ready(state: dict[str, Any] | None, workers: int) -> bool:
    if state is None or state.get("status") != "ALIVE":
        return False
    alive = [w for w in state["workers"] if w["state"] == "ALIVE"]
    return len(alive) >= workers and all(w["host"] == HOST for w in alive)


def require_master(master: str) -> None:
    """Fail at once, saying what to run, when a spark:// master does not accept connections (a
    SparkSession would retry for minutes). local[...] masters need nothing."""
    url = urlparse(master)
    if url.scheme != "spark":
        return
    try:
        socket.create_connection((url.hostname, url.port or 7077), timeout=5).close()
    except OSError as exc:
        raise ClusterError(
            f"REDSET_ENGINE=spark, but no Spark master answers at {master} ({exc}): start one with "
            "`redset spark start` (make spark-start), or point REDSET_SPARK_MASTER at yours"
        ) from exc
