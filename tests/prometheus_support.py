"""A real Prometheus server for the metrics tests, built by `make prometheus` (Go, cached).

`start_prometheus` runs it on a free port with its own storage, scraping one target every
second with docker/prometheus/alerts.yml loaded, and stops it with the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline_assets.runtime.ports import free_ports

VERSION = "v0.316.0"
ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docker" / "prometheus"
START_TIMEOUT_S = 60.0


def binaries() -> Path:
    """Where `make prometheus` put prometheus and promtool (REDSET_PROMETHEUS_BIN, or its default)."""
    if os.environ.get("REDSET_PROMETHEUS_BIN"):
        return Path(os.environ["REDSET_PROMETHEUS_BIN"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "redset" / f"prometheus-{VERSION}"


def tool(name: str) -> Path:
    path = binaries() / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"no {path}: run `make prometheus` (it builds Prometheus {VERSION} with Go, once)")
    return path


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=30) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's series, each {"metric": labels, "value": [time, "value"]}."""
        return self.api("query", query=expr)["result"]

    def values(self, expr: str, label: str) -> dict[str, float]:
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(expr)}


@contextmanager
def start_prometheus(target: str, home: Path) -> Iterator[Prometheus]:
    """Prometheus on a free port, scraping `target` ("127.0.0.1:port") every second."""
    [port] = free_ports(1)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(RULES / "alerts.yml", home / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        # As docker/prometheus/prometheus.yml: keep the metrics' own `job` label.
        "scrape_configs": [{"job_name": "redset", "honor_labels": True, "static_configs": [{"targets": [target]}]}],
    }
    (home / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    log = (home / "prometheus.log").open("w")
    process = subprocess.Popen(
        [str(tool("prometheus")), f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not start:\n{(home / 'prometheus.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
