"""`make screenshots`: the pictures of README.md and docs/dagster.md, from a real `redset demo` run.

Starts `redset demo` in the background with its own broker, ports and folders (a temporary
folder; never 9092/3000/8501/8080, so a `make demo` beside it is left alone), waits until the
dashboards show --min-queries queries, photographs the Dagster lineage and both dashboard pages
with headless Chromium, then stops the demo with SIGINT (its Ctrl-C) and the broker.

    .venv/bin/python scripts/screenshots.py [--out docs] [--min-queries 50000] [--source PATH]

Writes docs/lineage.png, docs/dashboard-aggregate.png and docs/dashboard-expert.png as palette
PNGs. On failure the temporary folder (the demo's logs) is kept and named.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pipeline_assets import demo, settings
from pipeline_assets.demo import browser_shots
from pipeline_assets.kafka import broker
from pipeline_assets.runtime.ports import free_ports
from pipeline_assets.serving.dashboard.data import Filters, ServingData

READY_TIMEOUT_S = 1800.0
STOP_TIMEOUT_S = 120.0
SHOT_PATIENCE_S = 900.0  # the demo keeps every core busy: pages take many looks to render
COLOURS = 256  # palette PNGs: a few hundred KB instead of a few MB
MAX_WIDTH = 2000  # pixels; wider pictures are scaled down


@dataclass(frozen=True)
class Shot:
    file: str
    path: str  # below the service's base URL
    expected: tuple[str, ...]  # texts the rendered page must show
    size: str  # Chromium's window, "width,height"
    scale: float = 1.0  # device pixels per CSS pixel: sharper small text


def shots() -> dict[str, list[Shot]]:
    return {
        # Upstream of the snapshot: the whole chain, source -> topic -> raw -> staging -> marts -> snapshot.
        "dagster": [
            Shot("lineage.png", demo.LINEAGE_PATH, ("redset_source", "redset_kafka_topic", "raw_queries",
                 "stg_queries", "clean_queries", "serving_snapshot"), "1500,820", 2.0),
        ],
        "dashboards": [
            Shot("dashboard-aggregate.png", "", ("Fleet: aggregate view", "Total queries", "Query types",
                 "Queries per hour", "Leaderboards", "Repetition and cache opportunity",
                 "Instances that changed most", "Forecast accuracy", "Anomalies per instance"), "1400,6200"),
            Shot("dashboard-expert.png", "expert", ("Expert view: one instance", "Stress index",
                 "Execution time percentiles per hour", "Workload per table", "Anomaly tags",
                 "Forecast: next 168 hours", "Workload drift and tail concentration"), "1400,5600"),
        ],
    }  # fmt: skip


def demo_env(tmp: Path, bootstrap: str, ports: list[int]) -> dict[str, str]:
    # Settings of another run (REDSET_WAREHOUSE, ...) would point the demo at its folders.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDSET_")}
    return env | {
        "REDSET_DATA_DIR": str(tmp / "data"),
        "REDSET_KAFKA_HOME": str(tmp / "kafka"),  # the demo finds the broker started here as running
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDSET_DEMO_DAGSTER_HOME": str(tmp / "dagster_home"),
        "REDSET_DEMO_DAGSTER_PORT": str(ports[0]),
        "REDSET_DEMO_DASHBOARD_PORT": str(ports[1]),
        "REDSET_DEMO_DOCS_PORT": str(ports[2]),
    }


def wait_for_numbers(proc: subprocess.Popen, serving: Path, min_queries: int, log: Path) -> int:
    """Queries on the dashboards once they show at least `min_queries`."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    shown = 0
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo exited with status {proc.returncode}; log:\n{log.read_text()[-3000:]}")
        data = ServingData(serving)
        if not data.is_empty():
            shown = int(data.kpis(Filters())["queries"])
            if shown >= min_queries:
                return shown
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dashboards show {shown:,} queries after {READY_TIMEOUT_S:.0f}s; see {log}")
        time.sleep(10)


def take(shot: Shot, base: str, out: Path, profile: Path) -> None:
    path = out / shot.file
    url = f"{base}/{shot.path}"
    text = browser_shots.render(url, list(shot.expected), path, profile, shot.size, shot.scale, SHOT_PATIENCE_S)
    missing = [e for e in shot.expected if e not in text]
    if missing or "Traceback" in text or "No serving data yet" in text:
        raise RuntimeError(f"{shot.file}: the page lacks {missing} or shows an error; page text: {text[:2000]}")
    shrink(path)
    print(f"  {path} ({path.stat().st_size / 1024:.0f} KB)", flush=True)


def shrink(path: Path) -> None:
    """A palette PNG at most MAX_WIDTH wide: UI screenshots have few colours."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.Resampling.LANCZOS)
    image.quantize(COLOURS, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C for the demo: it stops what it started, newest first."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--min-queries", type=int, default=50_000)
    parser.add_argument("--source", help="what the demo replays (default: its 1M generated rows)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="redset-screenshots-"))
    kafka = broker.start_on_free_ports(tmp / "kafka")
    log = tmp / "demo.log"
    proc = None
    ok = False
    try:
        ports = free_ports(3)
        cmd = [sys.executable, "-m", "pipeline_assets.cli", "demo"] + (["--source", args.source] if args.source else [])
        print(f"Starting the demo (ports {ports}, folder {tmp}) ...", flush=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, env=demo_env(tmp, kafka.bootstrap, ports), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=settings.PROJECT_ROOT,
            )  # fmt: skip
        shown = wait_for_numbers(proc, tmp / "data" / "serving", args.min_queries, log)
        print(f"The dashboards show {shown:,} queries; taking the pictures:", flush=True)
        bases = {"dagster": f"http://{demo.HOST}:{ports[0]}", "dashboards": f"http://{demo.HOST}:{ports[1]}"}
        browser_shots.dagster_ready(bases["dagster"])
        for service, service_shots in shots().items():
            for shot in service_shots:
                take(shot, bases[service], args.out, tmp / "chromium" / shot.file)
        ok = True
    finally:
        if proc is not None:
            stop(proc)
        broker.stop(tmp / "kafka", quiet=True)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"screenshots: failed; the demo's log and folders are in {tmp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
