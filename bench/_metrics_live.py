"""The live part of bench/metrics.py: live mode's cycles with REDSET_METRICS=off and on.

Rounds go off, on, on, off, ... so that the machine's other work falls on both alike. Each
round is a `redset live` of its own (topic, data folder, DAGSTER_HOME) on the shared broker, fed the
same batches: batch k is `batch_rows` rows of day k, produced once batch k-1 is on the snapshot.
While metrics are on, a scraper GETs /metrics every `scrape_every` seconds, as Prometheus would.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import _freshness_batch as batch
import _freshness_live as live
from freshness import dagster_env, produce_table

START = date(2024, 3, 1)
PUBLISH_TIMEOUT_S = 900.0


class Scraper:
    """GET `url` every `every` seconds in a thread; the seconds of each answered scrape."""

    def __init__(self, url: str, every: float) -> None:
        self.url, self.every = url, every
        self.seconds: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=10) as answer:
                    answer.read()
            except OSError:
                self.errors += 1  # before the endpoint is up, or a refused scrape
                continue
            self.seconds.append(time.perf_counter() - started)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def batches(count: int, rows: int) -> list:
    from pipeline_assets.source import generator

    return [generator.generate(rows, seed=100 + k, deployment="both", start=START + timedelta(days=k), days=1)
            for k in range(count)]  # fmt: skip


def published(data_dir: Path, messages: int) -> bool:
    """The cycle that took the `messages`-th message has published its snapshot."""
    seen = 0
    for c in live.cycles(data_dir):
        seen += c.get("messages") or 0
        if seen >= messages:
            return c.get("published_at") is not None
    return False


def one_round(root: Path, bootstrap: str, metrics: bool, tables: list, scrape_every: float, port: int) -> dict[str, Any]:
    mode = "on" if metrics else "off"
    topic = f"bench.metrics.{root.name}.{os.getpid()}"
    env = dagster_env(root, bootstrap, topic) | {"REDSET_METRICS": mode, "REDSET_METRICS_PORT": str(port)}
    data_dir = Path(env["REDSET_DATA_DIR"])
    log = root / "live.log"
    proc = live.start_live(env, log)
    scraper = Scraper(f"http://127.0.0.1:{port}/metrics", scrape_every) if metrics else None
    sent = 0
    try:
        for k, table in enumerate(tables):
            produce_table(table, root / f"batch-{k}.parquet", topic, bootstrap)
            sent += table.num_rows
            deadline = time.monotonic() + PUBLISH_TIMEOUT_S
            while not published(data_dir, sent):
                if proc.poll() is not None:
                    raise RuntimeError(f"metrics {mode}: live mode exited with {proc.returncode}; see {log}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"metrics {mode}: batch {k} not published within {PUBLISH_TIMEOUT_S:.0f}s; see {log}")
                time.sleep(0.2)
            print(f"   metrics {mode}: batch {k + 1}/{len(tables)} published (load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        if scraper:
            scraper.stop()
        batch.stop_group(proc)
    cycles = [c for c in live.cycles(data_dir) if c.get("messages")]
    return {"mode": mode, "cycles": cycles, "scrapes": scraper.seconds if scraper else [],
            "scrape_errors": scraper.errors if scraper else 0}  # fmt: skip


def cycle_seconds(rounds: list[dict[str, Any]], mode: str, warmup: int, insights: bool | None = None) -> list[float]:
    """Whole-cycle seconds of `mode`'s rounds, each round's first `warmup` cycles left out."""
    out = []
    for r in rounds:
        if r["mode"] != mode:
            continue
        for c in r["cycles"][warmup:]:
            if insights is None or bool(c.get("with_insights")) == insights:
                out.append(sum(c["seconds"].values()))
    return out


def stage_medians(rounds: list[dict[str, Any]], mode: str, warmup: int) -> dict[str, float]:
    stages: dict[str, list[float]] = {}
    for r in rounds:
        if r["mode"] == mode:
            for c in r["cycles"][warmup:]:
                for stage, s in c["seconds"].items():
                    stages.setdefault(stage, []).append(s)
    return {stage: round(statistics.median(v), 3) for stage, v in stages.items()}
