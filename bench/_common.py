"""What every bench script shares: the machine's description, a results table and JSON file,
child processes whose peak RSS is measured, a private Kafka broker and private data folders.

Speed on our shared, noisy machines is only meaningful as a ratio of two figures measured side by
side in one run, so every script measures its baseline and our code in the same process tree,
one after the other, and reports both with their ratio.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# The bench scripts run as `python bench/<name>.py`; make the project importable without
# relying on the editable install (a fresh clone after `make install` has it anyway).
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from pipeline_assets.settings import environment  # noqa: E402  (re-exported for the bench scripts)


# --- the machine -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the figures come from: cores, memory, load (others' work skews absolute figures)."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(pages / 1e9, 1),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


# --- results -----------------------------------------------------------------------------------


@dataclass
class Results:
    """The figures of one bench run: printed as a table, saved as JSON."""

    name: str
    params: dict[str, Any]
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    machine_at_start: dict[str, Any] = field(default_factory=machine)
    rows: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, value: float | int | str | None, unit: str = "", target: str = "", ok: bool | None = None) -> None:
        """One line of the table; `target` like '>= 0.7' and `ok` whether it was met."""
        self.rows.append({"label": label, "value": value, "unit": unit, "target": target, "ok": ok})

    def ratio(self, label: str, numerator: float, denominator: float, target: str) -> float:
        """Add a ratio line checked against `target` ('>= x' or '<= x'); returns the ratio."""
        value = numerator / denominator if denominator else float("nan")
        op, bound = target.split()
        ok = value >= float(bound) if op == ">=" else value <= float(bound)
        self.add(label, round(value, 3), "x", target, ok)
        return value

    def print_table(self) -> None:
        width = max(len(r["label"]) for r in self.rows) if self.rows else 10
        print(f"\n{self.name}  ({_params_line(self.params)})")
        print(f"{'measure':<{width}}  {'value':>14}  {'unit':<8} {'target':<10} met")
        print("-" * (width + 42))
        for r in self.rows:
            met = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
            print(f"{r['label']:<{width}}  {_fmt(r['value']):>14}  {r['unit']:<8} {r['target']:<10} {met}")
        m = machine()
        print(f"machine: {m['cores']} cores, {m['memory_gb']} GB; load average now {m['load_avg_1_5_15']} "
              f"(at start {self.machine_at_start['load_avg_1_5_15']})")  # fmt: skip

    def save(self) -> Path:
        """bench/results/<name>-<UTC time>.json, and a copy as <name>-latest.json."""
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        payload = {
            "name": self.name,
            "params": self.params,
            "started_at": self.started_at,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine_at_start": self.machine_at_start,
            "machine_at_end": machine(),
            "results": self.rows,
            "details": self.details,
        }
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{self.name}-{stamp}.json"
        text = json.dumps(payload, indent=2, default=str)
        path.write_text(text)
        (RESULTS_DIR / f"{self.name}-latest.json").write_text(text)
        print(f"results: {path}")
        return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _params_line(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("nan")


class Stopwatch:
    """Wall and CPU seconds (all threads of this process) of a `with` block."""

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.monotonic(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu

    def figures(self) -> dict[str, float]:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds}


# --- child processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    result: dict[str, Any]  # what the child wrote to its result file
    wall_seconds: float  # process start to exit, imports included
    peak_rss_bytes: int  # the child's own peak resident set (its VmHWM)
    cpu_seconds: float  # user + system CPU of the child: less sensitive to others' load than wall time


def run_child(args: list[str], env: Mapping[str, str] | None = None) -> ChildRun:
    """Run `python <args> --result-file F` and return what it wrote to F with its peak RSS.

    The peak is the child's own VmHWM, which it reports itself (write_child_result): not this
    bench process nor the broker. wait4()'s ru_maxrss would not do: Linux carries the parent's
    peak over to the child at exec, so every child would report at least this process's peak.
    """
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, *args, "--result-file", str(result_file)]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=PROJECT_ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"child {' '.join(cmd)} failed with exit code {proc.returncode}")
        result = json.loads(result_file.read_text())
    peak = result.get("self_peak_rss_bytes") or usage.ru_maxrss * 1024  # ru_maxrss: KiB, an upper bound
    return ChildRun(result, wall, peak, usage.ru_utime + usage.ru_stime)


def own_peak_rss_bytes() -> int | None:
    """This process's peak resident set (VmHWM in /proc/self/status), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def write_child_result(path: str | None, result: Mapping[str, Any]) -> None:
    """The child's half of run_child(): its figures, plus its own peak RSS."""
    payload = {**result, "self_peak_rss_bytes": own_peak_rss_bytes()}
    if path:
        Path(path).write_text(json.dumps(payload, default=str))
    else:
        print(json.dumps(payload, indent=2, default=str))


# --- private folders and environment -----------------------------------------------------------


def data_env(root: Path) -> dict[str, str]:
    """REDSET_* variables that put every data folder of the pipeline under `root`."""
    return {
        "REDSET_DATA_DIR": str(root),
        "REDSET_RAW_DIR": str(root / "raw"),
        "REDSET_DEAD_LETTER_DIR": str(root / "dead_letters"),
        "REDSET_LANDING_DIR": str(root / "landing"),
        "REDSET_WAREHOUSE": str(root / "warehouse.duckdb"),
        "REDSET_SERVING_DIR": str(root / "serving"),
        "REDSET_ALERT_LOG": str(root / "alerts.log"),
    }


@contextmanager
def scratch_dir(name: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for one bench run (raw zone, warehouse, broker home), removed after."""
    root = Path(tempfile.mkdtemp(prefix=f"redset-bench-{name}-"))
    try:
        yield root
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- a private Kafka broker --------------------------------------------------------------------


@contextmanager
def private_broker(home: Path) -> Iterator[str]:
    """A broker of our own on free ports with its storage in `home`; yields its bootstrap address.

    KAFKA_BOOTSTRAP_SERVERS points at it while the block runs, for code that reads client_config().
    """
    from pipeline_assets.kafka import broker

    running = broker.start_on_free_ports(home)
    print(f"private Kafka broker on {running.bootstrap} (home {home})", flush=True)
    try:
        with environment({"KAFKA_BOOTSTRAP_SERVERS": running.bootstrap}):
            yield running.bootstrap
    finally:
        broker.stop(home, quiet=True)
