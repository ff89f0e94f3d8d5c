"""Whether a STARTED run's worker still lives; a run whose worker is gone is marked failed.

Dagster's default run launcher cannot check a worker's health. When a run worker dies together
with what launched it (kill -9 of `dagster dev` or the code server, the OOM killer, a machine
restart), the run stays STARTED in the instance: every guard that waits for a run in flight waits
forever, and the run's pool slot stays taken.

So each run worker holds a lock for as long as it lives: the project's executor
(orchestration/pools.py) calls `hold_worker_lock` as a run starts. It takes an flock on
`<instance storage>/redset_run_workers/<run_id>.lock`, then writes `<run_id>.json` beside it
(pid, host, since). The OS drops an flock when its process dies, and unlike a pid a lock is never
reused. `fail_dead_runs`, called by every guarding sensor each tick, probes the lock of each STARTED
run that wrote its record on this host: a lock nobody holds is a dead worker. The run is then
marked failed (`report_run_failed`, tag redset/worker_gone), its concurrency slots are freed, and
the sensors' usual retry paths request its work again. A run without a record (not run by the
project's executor, or killed in the instant before its lock) is left alone: the jobs'
dagster/max_runtime tags and Dagster's run monitoring bound it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
from filelock import FileLock, Timeout

LOCK_DIR = "redset_run_workers"
GONE_TAG = "redset/worker_gone"
ACQUIRE_TIMEOUT_S = 10.0  # a probe holds a lock for an instant; the worker waits that out
PRUNE_AFTER_S = 3600.0  # records of ended runs are deleted after this long

_held: dict[str, FileLock] = {}  # this process's worker lock, kept until the process exits
_logger = logging.getLogger(__name__)


def lock_dir(instance: dg.DagsterInstance) -> Path:
    return Path(instance.storage_directory()) / LOCK_DIR


def hold_worker_lock(instance: dg.DagsterInstance, run_id: str) -> Path:
    """Take this run's worker lock and keep it until the process exits; returns the lock's path.
    Released only when the process ends, so a lock is free only once the run's events are written."""
    folder = lock_dir(instance)
    folder.mkdir(parents=True, exist_ok=True)
    for earlier in list(_held):  # a process that runs runs one after another: those have ended
        _held.pop(earlier).release()
    path = folder / f"{run_id}.lock"
    lock = FileLock(str(path))
    lock.acquire(timeout=ACQUIRE_TIMEOUT_S)
    _held[run_id] = lock
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(), "since": since}
    staged = folder / f".{run_id}.json.{os.getpid()}"
    staged.write_text(json.dumps(record))
    os.replace(staged, folder / f"{run_id}.json")  # written once the lock is held: then a free lock means dead
    return path


@contextmanager
def _taken_if_free(path: Path) -> Iterator[bool]:
    """Whether no process holds the flock on `path`; if so it is ours while the block runs, so a
    second prober (another sensor) sees it held and leaves the run to us."""
    lock = FileLock(str(path))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def lock_is_free(path: Path) -> bool:
    """Whether `path` exists and no process holds its flock (probes never create the file)."""
    if not path.exists():
        return False
    with _taken_if_free(path) as free:
        return free


def _record(folder: Path, run_id: str) -> dict[str, Any] | None:
    try:
        return json.loads((folder / f"{run_id}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def fail_dead_runs(instance: dg.DagsterInstance, log: Any = _logger) -> list[str]:
    """Mark failed each STARTED run whose worker is gone and free its pool slots; one line per
    run so marked, for the sensor's tick."""
    folder = lock_dir(instance)
    if not folder.is_dir():
        return []
    lines = []
    host = socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        record = _record(folder, run.run_id)
        if record is None or record.get("host") != host:
            continue  # no lock of ours to judge by
        with _taken_if_free(folder / f"{run.run_id}.lock") as free:
            current = instance.get_run_by_id(run.run_id) if free else None
            if current is None or current.status != dg.DagsterRunStatus.STARTED:
                continue  # alive, or it ended meanwhile
            message = (
                f"run worker gone: pid {record.get('pid')} on {host} (since {record.get('since')}) no longer "
                f"holds {folder / (run.run_id + '.lock')}; marked failed by the sensors' liveness check "
                "(runtime/workers.py), its work is requested again"
            )
            instance.add_run_tags(run.run_id, {GONE_TAG: "true"})
            instance.report_run_failed(current, message)
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log.warning(f"{run.job_name} run {run.run_id}: {message}")
        lines.append(f"{run.job_name} run {run.run_id}: worker gone, marked failed")
    _prune(instance, folder)
    return lines


def _prune(instance: dg.DagsterInstance, folder: Path) -> None:
    """Delete the lock and record of runs that ended over PRUNE_AFTER_S ago."""
    cutoff = time.time() - PRUNE_AFTER_S
    old = {p.stem: p for p in folder.glob("*.json") if not p.name.startswith(".") and p.stat().st_mtime < cutoff}
    if not old:
        return
    in_flight = {r.run_id for r in instance.get_runs(filters=dg.RunsFilter(run_ids=list(old))) if not r.is_finished}
    for run_id, record in old.items():
        lock = folder / f"{run_id}.lock"
        if run_id not in in_flight and (not lock.exists() or lock_is_free(lock)):
            record.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
