"""A real browser: headless Chromium (Debian's package) renders both dashboard pages and the
Dagster asset lineage page; the rendered DOM must show the expected text. Screenshots go to
test-output/ for a person to look at.

`make test` installs Chromium first (`make browser`). The dashboards read the serving folder the
real pipeline built (tests/serving_pipeline.py); the Dagster webserver loads workspace.yaml.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serving_pipeline
from conftest import free_ports
from serving_pipeline import Built

from pipeline_assets import demo, settings
from pipeline_assets.demo import browser_shots

OUTPUT = settings.PROJECT_ROOT / "test-output"
APP = settings.PROJECT_ROOT / "pipeline_assets" / "serving" / "dashboard" / "app.py"
START_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not browser_shots.CHROMIUM.exists():
        pytest.fail(f"{browser_shots.CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    OUTPUT.mkdir(exist_ok=True)
    return browser_shots.CHROMIUM


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def wait_until_answers(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, f"{proc.args[0]} exited; log:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{url} did not answer; log:\n{log.read_text()[-3000:]}"
        time.sleep(1)


@contextmanager
def serve(cmd: list[str], env: dict[str, str], health_url: str, log: Path) -> Iterator[None]:
    """Run a server in its own process group until the test module is done."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=settings.PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_answers(health_url, proc, log)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def dashboards(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    cmd = [
        tool("streamlit"), "run", str(APP), "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    env = {**os.environ, **built.env()}
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with serve(cmd, env, f"http://127.0.0.1:{port}/_stcore/health", log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    home = tmp_path_factory.mktemp("dagster-home")
    base = f"http://127.0.0.1:{port}"
    cmd = [tool("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with serve(cmd, {**os.environ, "DAGSTER_HOME": str(home)}, f"{base}/server_info", home / "webserver.log"):
        browser_shots.dagster_ready(base, START_TIMEOUT_S)  # code location loaded, pop-up dismissed
        yield base


def render(url: str, expected: list[str], screenshot: str, profile: Path, size: str) -> str:
    """The page's text, and its screenshot in test-output/ (the shared helper waits out loading)."""
    return browser_shots.render(url, expected, OUTPUT / screenshot, profile, size)


def test_aggregate_page_renders_kpis_and_charts(chromium: Path, dashboards: str, tmp_path: Path) -> None:
    expected = ["Fleet: aggregate view", "Total queries", f"{serving_pipeline.ROWS:,}", "Query types",
                "Queries per hour", "Cache hit rate", "Leaderboards", "Top 10 longest compiles"]  # fmt: skip
    expected += ["Instances that changed most", "Execution time from the top 1%"]
    expected += ["Forecast accuracy", "Anomalies per instance", "Repetition and cache opportunity", "Missed-cache share"]
    text = render(f"{dashboards}/", expected, "dashboard-aggregate.png", tmp_path / "p", "1400,2600")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text and "No serving data yet" not in text


def test_expert_page_renders_one_instance(chromium: Path, dashboards: str, tmp_path: Path) -> None:
    expected = ["Expert view: one instance", "Instance (busiest first)", "Stress index",
                "Execution time percentiles per hour", "Workload per table", "Minutes since the last ingest"]  # fmt: skip
    expected += ["Workload drift and tail concentration"]
    expected += ["Forecast: next 168 hours", "Anomaly tags", "Repeat share and cache hit rate per day"]
    text = render(f"{dashboards}/expert", expected, "dashboard-expert.png", tmp_path / "p", "1400,2400")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text


def test_dagster_lineage_page_shows_the_graph(chromium: Path, dagster_ui: str, tmp_path: Path) -> None:
    # Upstream of the snapshot: the marts, the staging view, the raw dump and, as external assets,
    # the Kafka topic and the source file.
    expected = ["serving_snapshot", "leaderboard", "query_metrics", "stress_index", "clean_queries", "stg_queries",
                "raw_queries", "redset_kafka_topic", "redset_source"]  # fmt: skip
    url = f"{dagster_ui}/{demo.LINEAGE_PATH}"  # the lineage URL `make demo` prints
    text = render(url, expected, "dagster-lineage.png", tmp_path / "p", "1600,1000")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not in the lineage: {missing}; page text: {text[:2000]}"
    assert "community" not in text.lower(), "the pop-up is still open"
