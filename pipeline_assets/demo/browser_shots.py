"""Headless Chromium (Debian's package, `make browser`): the rendered text of a page and a
screenshot of it. Shared by tests/test_browser.py and `make screenshots` (scripts/screenshots.py).

Chromium runs once per look, each time with a new profile folder; `--virtual-time-budget` lets
the page's scripts run before the DOM is dumped or the picture taken.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=15000",
]  # fmt: skip
# A page still loading is loaded again until this many seconds have passed: on a busy machine the
# first script runs of a fresh server (imports, first queries) outlast one virtual-time budget.
RENDER_PATIENCE_S = 240.0
MIN_SCREENSHOT_BYTES = 50_000  # a rendered page; the loading skeleton is about 16 KB
DAGSTER_LOAD_TIMEOUT_S = 180.0
CHROMIUM_TIMEOUT_S = 120.0


class RenderError(RuntimeError):
    pass


def page_text(dom: str) -> str:
    """Visible text of a dumped DOM: scripts and styles dropped, tags removed, spaces collapsed."""
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def chromium_run(profile: Path, size: str, *args: str, scale: float = 1.0) -> subprocess.CompletedProcess:
    """One headless Chromium run with a new profile folder; `size` is "width,height" in CSS pixels,
    `scale` the device pixels per CSS pixel (2: a sharper picture twice as wide)."""
    cmd = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}"]
    cmd += [f"--force-device-scale-factor={scale}", *args]
    # Its own session: a run that hangs on a busy machine is killed with its renderer children,
    # and counts as one failed look (the caller looks again).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\nchromium did not finish within {CHROMIUM_TIMEOUT_S:.0f}s"
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def render(*args: Any, **kwargs: Any) -> str:
    """render_dom()'s text alone."""
    return render_dom(*args, **kwargs)[1]


def render_dom(
    url: str,
    expected: list[str],
    path: Path,
    profile: Path,
    size: str,
    scale: float = 1.0,
    patience: float = RENDER_PATIENCE_S,
) -> tuple[str, str]:
    """The page's dumped DOM and its text once that shows every expected text (or `patience` runs
    out), and a screenshot of it at `path`. A page still loading is retried: its DOM lacks the text
    and its screenshot is a near-blank skeleton (a few KB). The caller checks the text."""
    if not CHROMIUM.exists():
        raise RenderError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    deadline = time.monotonic() + patience
    attempt = 0
    while True:
        attempt += 1
        dom = chromium_run(profile / f"dom-{attempt}", size, "--dump-dom", url).stdout
        text = page_text(dom)
        if all(e in text for e in expected) or time.monotonic() > deadline:
            break
    while True:
        attempt += 1
        path.unlink(missing_ok=True)
        shot = chromium_run(profile / f"shot-{attempt}", size, f"--screenshot={path}", url, scale=scale)
        if (path.exists() and path.stat().st_size > MIN_SCREENSHOT_BYTES) or time.monotonic() > deadline:
            break
    if not (path.exists() and path.stat().st_size > MIN_SCREENSHOT_BYTES):
        raise RenderError(f"no screenshot of {url}: {shot.stderr[-2000:]}")
    return dom, text


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def dagster_ready(base: str, timeout: float = DAGSTER_LOAD_TIMEOUT_S) -> None:
    """Wait until the webserver at `base` has loaded every code location (they load in the
    background; the lineage needs them), then dismiss the "join the community" pop-up."""
    deadline = time.monotonic() + timeout
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    while any(e["loadStatus"] != "LOADED" for e in graphql(base, query)["data"]["workspaceOrError"]["locationEntries"]):
        if time.monotonic() > deadline:
            raise RenderError(f"the code locations of {base} did not load within {timeout:.0f}s")
        time.sleep(1)
    if graphql(base, "mutation { setNuxSeen }")["data"]["setNuxSeen"] is not True:
        raise RenderError(f"{base} did not take setNuxSeen: the pop-up would cover the page")
