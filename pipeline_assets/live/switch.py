"""Whether live mode is on, for the batch sensors, and one live loop per data folder.

A live loop holds `<data dir>/live/live.lock` (an flock: the OS drops it if the process dies) and
names itself in `running.json` beside it. While a live_mode_job run is queued or running, or a
live loop holds the lock (`redset live`), kafka_lag_sensor and build_marts_on_new_raw_batches
skip: live mode consumes the group and builds the dates itself. Whether a loop runs is asked of
the lock (probed), never of running.json's pid, which a dead loop leaves behind and another
process may have by now. A live_mode_job run whose worker died is failed by the sensors'
liveness check (runtime/workers.py), as any run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from filelock import FileLock, Timeout

from pipeline_assets.live.state import live_dir
from pipeline_assets.runtime.runs import run_in_flight
from pipeline_assets.runtime.workers import lock_is_free

LIVE_JOB = "live_mode_job"
# Metadata key on every materialization live mode reports (report.py): the batch marts sensor
# leaves the dates of live mode's raw batches to live mode.
LIVE_SESSION_METADATA = "live_session"
PROBE_WAIT_S = 5.0


class LiveModeBusy(RuntimeError):
    """Another live loop already runs on this data folder."""


def running_loop() -> dict[str, Any] | None:
    """The live loop running on this data folder ({pid, where, since}), or None: one runs while
    a process holds live.lock."""
    lock = live_dir() / "live.lock"
    if not lock.exists() or lock_is_free(lock):
        return None
    try:
        return json.loads((live_dir() / "running.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet
        return {"pid": "?", "where": "a live loop starting"}


@contextmanager
def one_live_loop(where: str) -> Iterator[None]:
    """Hold the live lock of this data folder while the block runs, or raise LiveModeBusy."""
    folder = live_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / "live.lock"))
    try:
        lock.acquire(timeout=PROBE_WAIT_S)  # a sensor's probe holds it for an instant
    except Timeout:
        other = running_loop() or {}
        raise LiveModeBusy(
            f"live mode already runs on {folder.parent} (pid {other.get('pid', '?')}, {other.get('where', '?')}); "
            "stop it first"
        ) from None
    record = folder / "running.json"
    try:
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record.write_text(json.dumps({"pid": os.getpid(), "where": where, "since": since}))
        yield
    finally:
        record.unlink(missing_ok=True)
        lock.release()


def live_mode_active(instance: dg.DagsterInstance) -> str | None:
    """Why the batch Kafka dump and marts builds should stand aside now, or None."""
    run = run_in_flight(instance, LIVE_JOB)
    if run is not None:
        return f"live mode is on: {LIVE_JOB} run {run.run_id} consumes Kafka and builds the marts"
    loop = running_loop()
    if loop is not None:
        return f"live mode is on: pid {loop['pid']} ({loop.get('where')}) consumes Kafka and builds the marts"
    return None
