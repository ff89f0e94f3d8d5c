"""A real browser: headless Chromium (Debian's package) renders both dashboard pages and the
Dagster asset lineage page; the rendered DOM must show the expected text. Screenshots go to
test-output/ for a person to look at.

`make test` installs Chromium first (`make browser`). The dashboards read the serving folder the
real pipeline built (tests/serving_pipeline.py); the Dagster webserver loads workspace.yaml.
"""

from __future__ import annotations

import html
import json
import os
import re
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

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = settings.PROJECT_ROOT / "test-output"
APP = settings.PROJECT_ROOT / "pipeline_assets" / "serving" / "dashboard" / "app.py"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=15000",
]  # fmt: skip
# A page still loading is loaded again until this many seconds have passed: on a busy machine the
# first script runs of a fresh server (imports, first queries) outlast one virtual-time budget.
RENDER_PATIENCE_S = 240.0
START_TIMEOUT_S = 180.0
MIN_SCREENSHOT_BYTES = 50_000  # a rendered page; the loading skeleton is about 16 KB


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    OUTPUT.mkdir(exist_ok=True)
    return CHROMIUM


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


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    home = tmp_path_factory.mktemp("dagster-home")
    base = f"http://127.0.0.1:{port}"
    cmd = [tool("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with serve(cmd, {**os.environ, "DAGSTER_HOME": str(home)}, f"{base}/server_info", home / "webserver.log"):
        # The code location loads in the background; the lineage needs it.
        deadline = time.monotonic() + START_TIMEOUT_S
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        while any(e["loadStatus"] != "LOADED" for e in graphql(base, query)["data"]["workspaceOrError"]["locationEntries"]):
            assert time.monotonic() < deadline, "the code location did not load"
            time.sleep(1)
        # Dismiss the "join the community" pop-up before any screenshot.
        assert graphql(base, "mutation { setNuxSeen }")["data"]["setNuxSeen"] is True
        yield base


def page_text(dom: str) -> str:
    """Visible text of a dumped DOM: scripts and styles dropped, tags removed, spaces collapsed."""
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def chromium_run(chromium: Path, profile: Path, size: str, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run with a new profile folder."""
    cmd = [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def render(chromium: Path, url: str, expected: list[str], screenshot: str, profile: Path, size: str) -> str:
    """The page's text once its DOM shows every expected text (or attempts run out), and a
    screenshot of it in test-output/. A page still loading is retried: its DOM lacks the text and
    its screenshot is a near-blank skeleton (a few KB)."""
    deadline = time.monotonic() + RENDER_PATIENCE_S
    attempt = 0
    while True:
        attempt += 1
        text = page_text(chromium_run(chromium, profile / f"dom-{attempt}", size, "--dump-dom", url).stdout)
        if all(e in text for e in expected) or time.monotonic() > deadline:
            break
    path = OUTPUT / screenshot
    while True:
        attempt += 1
        path.unlink(missing_ok=True)
        shot = chromium_run(chromium, profile / f"shot-{attempt}", size, f"--screenshot={path}", url)
        if (path.exists() and path.stat().st_size > MIN_SCREENSHOT_BYTES) or time.monotonic() > deadline:
            break
    assert path.exists() and path.stat().st_size > MIN_SCREENSHOT_BYTES, f"no screenshot of {url}: {shot.stderr[-2000:]}"
    return text


def test_aggregate_page_renders_kpis_and_charts(chromium: Path, dashboards: str, tmp_path: Path) -> None:
    expected = ["Fleet: aggregate view", "Total queries", f"{serving_pipeline.ROWS:,}", "Query types",
                "Queries per hour", "Cache hit rate", "Leaderboards", "Top 10 longest compiles",
                "Repetition and cache opportunity", "Missed-cache share",
                ]  # fmt: skip
    text = render(chromium, f"{dashboards}/", expected, "dashboard-aggregate.png", tmp_path / "p", "1400,2600")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text and "No serving data yet" not in text


def test_expert_page_renders_one_instance(chromium: Path, dashboards: str, tmp_path: Path) -> None:
    expected = ["Expert view: one instance", "Instance (busiest first)", "Stress index",
                "Execution time percentiles per hour", "Workload per table", "Minutes since the last ingest",
                "Repeat share and cache hit rate per day",
                ]  # fmt: skip
    text = render(chromium, f"{dashboards}/expert", expected, "dashboard-expert.png", tmp_path / "p", "1400,2400")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text


def test_dagster_lineage_page_shows_the_graph(chromium: Path, dagster_ui: str, tmp_path: Path) -> None:
    from pipeline_assets.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    # Upstream of the snapshot: the marts, the staging view and, once registered, the raw dump.
    expected = ["serving_snapshot", "leaderboard", "query_metrics", "stress_index", "clean_queries", "stg_queries"]
    expected += [k for k in ("raw_queries",) if k in keys]
    url = f"{dagster_ui}/{demo.LINEAGE_PATH}"  # the lineage URL `make demo` prints
    text = render(chromium, url, expected, "dagster-lineage.png", tmp_path / "p", "1600,1000")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not in the lineage: {missing}; page text: {text[:2000]}"
    assert "community" not in text.lower(), "the pop-up is still open"
