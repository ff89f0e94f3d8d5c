"""The live path of bench/freshness.py: `redset live` (one process: consume, warm dbt run of the
touched days and the all-time marts, publish), and where a marker's time went along its cycles
(`<data dir>/live/cycles.jsonl`, one line per cycle that consumed or built something, and one per
background slice: an insights model or one file's dbt tests between two cycles)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import PROJECT_ROOT

CYCLE_PARTS = ("consume", "dbt_daily", "dbt_all_time", "publish", "report", "metrics")  # cycles.jsonl's "seconds"
AFTER_PUBLISH = ("report", "metrics")  # a cycle's steps after its publication


def start_live(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`redset live` in its own session (stop it with _freshness_batch.stop_group: SIGTERM ends
    it after its current cycle)."""
    cmd = [sys.executable, "-m", "pipeline_assets.cli", "live"]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def cycles(data_dir: Path) -> list[dict[str, Any]]:
    """Every cycle live mode logged so far, oldest first ([] before the first)."""
    path = data_dir / "live" / "cycles.jsonl"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being appended right now
    return out


def publisher(data_dir: Path, seen: float, timeout: float = 120.0) -> dict[str, Any] | None:
    """The cycle whose snapshot the marker was seen in: the first that published (its end minus
    its report step) no earlier than a second before the sighting. Its line is written after its
    report step, so this waits for it (None if it never comes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in cycles(data_dir):
            if "slice" in c:  # a marker's rows reach the warehouse in a cycle, which publishes them
                continue
            after = sum(c.get("seconds", {}).get(k, 0.0) for k in AFTER_PUBLISH)
            if c["finished_at"] - after >= seen - 1.0:
                return c
        time.sleep(0.5)
    return None


def breakdown(data_dir: Path, delivered: float, seen: float) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Where a marker's latency went: waiting for a cycle to pick it up (the cycle running at
    delivery finishing, then the poll pause), of that the background slices run meanwhile, the steps of the cycle that published it up to its
    publication, and the bench's own polling after it; they add up to the latency. The report
    step comes after the publication, so it is shown but not counted. Also the cycles from the
    delivery to that one, times relative to the delivery."""
    last = publisher(data_dir, seen)
    between = [c for c in cycles(data_dir) if c["finished_at"] > delivered
               and (last is None or c["cycle"] < last["cycle"] or (c["cycle"] == last["cycle"] and "slice" not in c))]  # fmt: skip
    rows = [{"cycle": c["cycle"], "slice": c.get("slice"), "messages": c.get("messages"), "days": c.get("days"),
             "finished_s": round(c["finished_at"] - delivered, 2),
             **{k: round(v, 2) for k, v in c.get("seconds", {}).items()}} for c in between]  # fmt: skip
    parts = {"wait_for_cycle_s": 0.0, "background_s": 0.0, **{f"{k}_s": 0.0 for k in CYCLE_PARTS},
             "after_publish_s": seen - delivered}  # fmt: skip
    if last is None:
        return {k: round(v, 2) for k, v in parts.items()}, rows
    spent = {k: float(last.get("seconds", {}).get(k, 0.0)) for k in CYCLE_PARTS}
    started = last["finished_at"] - sum(spent.values())
    # The slices between delivery and that cycle, only their part after the delivery.
    slices = [c for c in between if "slice" in c]
    background = sum(min(sum(c["seconds"].values()), c["finished_at"] - delivered) for c in slices)
    parts["background_s"] = background
    parts["wait_for_cycle_s"] = max(0.0, started - delivered - background)
    for k in CYCLE_PARTS:
        parts[f"{k}_s"] = spent[k]
    counted = sum(v for k, v in spent.items() if k not in AFTER_PUBLISH)
    parts["after_publish_s"] = seen - delivered - parts["wait_for_cycle_s"] - background - counted
    return {k: round(v, 2) for k, v in parts.items()}, rows


def print_cycles(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["slice"]:
            print(f"     slice after cycle {r['cycle']}: {r['slice']}, {r.get('dbt')}s, finished +{r['finished_s']}s")
            continue
        seconds = ", ".join(f"{k} {r[k]}s" for k in CYCLE_PARTS if k in r)
        print(f"     cycle {r['cycle']}: {r['messages']} messages, days {r['days']}, finished +{r['finished_s']}s ({seconds})")
