"""One writer of the DuckDB warehouse across processes: `with warehouse_writer("dbt build ..."):`.

DuckDB lets one process open the file for writing, and no process open it at all (not even
read-only) while another writes. Every process that opens the warehouse (dbt, the serving snapshot,
the forecasts, the offsets check, live mode's cycles) does so inside `warehouse_writer`: an flock
(filelock) on a file next to the warehouse. The OS drops an flock when its process dies, so a
crashed holder never leaves the lock taken.

No starvation: live mode takes the lock once per cycle and asks again right after releasing it. A
plain lock would let it win every time a batch writer polls a moment too late, so every taker
first passes a second lock, the queue: it holds the queue only while it waits for the writer lock.
A batch writer that waits holds the queue, so live mode, back for its next cycle, waits at the
queue, and the batch writer gets the lock when the current cycle ends: it waits at most one cycle.

Re-entrant per thread: a block that already holds the lock (a live cycle publishing the snapshot)
enters again at no cost. Who holds it is written to `<warehouse>.writer.json` (holder, pid, since;
removed on release) for the "waiting for ..." log line.

A wait has a limit (REDSET_WAREHOUSE_LOCK_WAIT_SECONDS): then one `warehouse_lock_timeout` alert
names the holder, and the waiter raises WarehouseLockTimeout instead of waiting on a holder that
hangs (a dead holder frees the lock itself).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert

LOG_EVERY_SECONDS = 30.0  # a waiter says again whom it waits for

_logger = logging.getLogger(__name__)


class WarehouseLockTimeout(TimeoutError):
    """The lock was not free within REDSET_WAREHOUSE_LOCK_WAIT_SECONDS; the message names its holder."""


def lock_paths(warehouse: Path) -> tuple[Path, Path, Path]:
    """(writer lock, queue lock, holder record) of `warehouse`."""
    return (
        warehouse.with_name(f"{warehouse.name}.writer.lock"),
        warehouse.with_name(f"{warehouse.name}.queue.lock"),
        warehouse.with_name(f"{warehouse.name}.writer.json"),
    )


def _lock(path: Path) -> FileLock:
    # One instance per path in this process, holds counted per thread: re-entrant in a thread,
    # exclusive between threads and processes.
    return FileLock(str(path), is_singleton=True)


def current_holder(warehouse: Path | None = None) -> dict[str, Any] | None:
    """The holder record of the last taker ({holder, pid, since}), or None when there is none."""
    _, _, record = lock_paths(warehouse or settings.warehouse_path())
    try:
        return json.loads(record.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being replaced
        return None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another writer"
    return f"{holder.get('holder')} (pid {holder.get('pid')}, since {holder.get('since')})"


def _acquire(lock: FileLock, what: str, warehouse: Path, holder: str, log: Any) -> None:
    """Take `lock`, logging whom it waits for when it must wait; give up at the wait limit."""
    try:
        lock.acquire(blocking=False)
        return
    except Timeout:
        pass
    limit = settings.bound("warehouse_lock_wait_seconds")
    deadline = time.monotonic() + limit
    while (left := deadline - time.monotonic()) > 0:
        log.info(f"{holder}: waiting for {what} of {warehouse.name}, held by {_describe(current_holder(warehouse))}")
        try:
            lock.acquire(timeout=min(LOG_EVERY_SECONDS, left))
            return
        except Timeout:
            continue
    held_by = current_holder(warehouse) or {}
    message = f"{holder} waited {limit:.0f}s for {what} of {warehouse.name}, held by {_describe(held_by)}; gave up"
    send_alert("warehouse_lock_timeout", message, log, waiter=holder, holder=held_by.get("holder"), pid=held_by.get("pid"))
    raise WarehouseLockTimeout(message)


def _write_record(path: Path, holder: str) -> None:
    record = {"holder": holder, "pid": os.getpid(), "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(json.dumps(record))
    os.replace(staged, path)  # a waiter reads the old record or the new one


@contextmanager
def warehouse_writer(holder: str, warehouse: Path | None = None, log: Any = None) -> Iterator[None]:
    """Hold the warehouse's one-writer lock while the block runs (readers take it too: DuckDB
    refuses a read-only open while another process writes). `holder` says who, for waiters' logs;
    `warehouse` defaults to settings.warehouse_path(); `log` is a logger or a Dagster context.log."""
    warehouse = (warehouse or settings.warehouse_path()).resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    log = log or _logger
    writer_path, queue_path, record_path = lock_paths(warehouse)
    writer = _lock(writer_path)
    if writer.is_locked:  # this thread holds it already: re-entry
        with writer:
            yield
        return
    queue = _lock(queue_path)
    _acquire(queue, "its turn", warehouse, holder, log)
    try:
        _acquire(writer, "the writer lock", warehouse, holder, log)
    finally:
        queue.release()
    try:
        _write_record(record_path, holder)
        yield
    finally:
        record_path.unlink(missing_ok=True)  # still ours: no one else writes it without the lock
        writer.release()
