"""Peak DuckDB spill and peak memory of a build, sampled from outside while it runs.

A thread samples, every `interval` seconds:
- the bytes on disk under DuckDB's temp folder (its spill files; st_blocks, so sparse files count
  what they really take);
- VmHWM (each process's own peak resident set) of this process and every descendant (dbt runs
  as a child of Dagster's run, itself in this process or a child).
Samples are kept with their times, so a model's share of the spill can be read from its run time.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


def disk_bytes(root: Path) -> int:
    """Bytes the files under `root` take on disk (0 when it does not exist)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:  # DuckDB removes spill files as it goes
                pass
    return total


def _children() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return parents


def _tree(root: int) -> list[int]:
    parents = _children()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _status(pid: int) -> tuple[str, int] | None:
    """(command name, VmHWM bytes) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
    except OSError:
        return None
    hwm = int(fields.get("VmHWM", "0 kB").split()[0]) * 1024
    name = " ".join(Path(a.decode(errors="replace")).name for a in argv[:2] if a)
    return name or fields.get("Name", "?").strip(), hwm


class BuildWatch:
    """`with BuildWatch(temp_dir) as watch:` ...; then watch.peak_temp_bytes, watch.peak_rss."""

    def __init__(self, temp_dir: Path, interval: float = 1.0, report_every: float = 300.0) -> None:
        self.temp_dir = temp_dir
        self.interval = interval
        self.report_every = report_every  # a progress line this often, for long runs
        self.samples: list[tuple[float, int]] = []  # (unix time, temp bytes)
        self.peak_rss: dict[int, tuple[str, int]] = {}  # pid -> (command, VmHWM)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="build-watch", daemon=True)

    def __enter__(self) -> "BuildWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        reported = time.monotonic()
        while not self._stop.wait(self.interval):
            self._sample()
            if time.monotonic() - reported >= self.report_every:
                reported = time.monotonic()
                print(f"   [watch] temp disk now {self.samples[-1][1] / 1e9:.2f} GB, peak {self.peak_temp_bytes / 1e9:.2f} GB; "
                      f"peak RSS {self.peak_rss_bytes() / 1e9:.2f} GB", flush=True)  # fmt: skip

    def _sample(self) -> None:
        self.samples.append((time.time(), disk_bytes(self.temp_dir)))
        for pid in _tree(os.getpid()):
            status = _status(pid)
            if status and status[1] >= self.peak_rss.get(pid, ("", 0))[1]:
                self.peak_rss[pid] = status

    @property
    def peak_temp_bytes(self) -> int:
        return max((b for _, b in self.samples), default=0)

    def peak_temp_between(self, start: float, end: float) -> int:
        return max((b for t, b in self.samples if start <= t <= end), default=0)

    def peak_rss_bytes(self) -> int:
        """The largest single process's peak (processes of one build mostly run one after another)."""
        return max((hwm for _, hwm in self.peak_rss.values()), default=0)

    def figures(self) -> dict[str, Any]:
        top = sorted(self.peak_rss.values(), key=lambda p: -p[1])[:5]
        return {"peak_temp_bytes": self.peak_temp_bytes, "peak_rss_bytes": self.peak_rss_bytes(),
                "peak_rss_by_process": [{"command": c[:80], "bytes": b} for c, b in top]}  # fmt: skip
