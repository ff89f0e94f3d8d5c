"""The warehouse's one-writer lock (pipeline_assets/warehouse/lock.py), across real processes.

A looping process takes the lock, holds it a moment and takes it again at once, the way live mode
does per cycle. A writer that asks meanwhile gets it when the current cycle ends (the looper
counts its cycles in a file: at most one starts between asking and getting), and the looper keeps
cycling afterwards. A holder that dies (SIGKILL) leaves the lock free.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pipeline_assets.warehouse.lock import WarehouseLockTimeout, current_holder, warehouse_writer

ROOT = Path(__file__).resolve().parents[1]

LOOPER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline_assets.warehouse.lock import warehouse_writer

    warehouse, cycles, hold = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    i = 0
    while True:
        with warehouse_writer(f"looper cycle {i}", warehouse):
            with cycles.open("a") as out:
                out.write(f"{i}\\n")
            time.sleep(hold)
        i += 1
    """
)


def _cycles(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_until(check, what: str, proc: subprocess.Popen | None = None) -> None:
    # Bounded by the test's patience, not asserted on: no timing asserts.
    for _ in range(600):
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the helper process exited with {proc.returncode}")
        threading.Event().wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def looper(tmp_path: Path):
    warehouse, cycles = tmp_path / "warehouse.duckdb", tmp_path / "cycles.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOPER, str(warehouse), str(cycles), "0.2"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_until(lambda: _cycles(cycles) >= 2, "the looper to cycle", proc)
        yield warehouse, cycles, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_writer_waits_at_most_one_cycle_of_a_looping_holder(looper, caplog) -> None:
    warehouse, cycles, proc = looper
    caplog.set_level(logging.INFO, logger="pipeline_assets.warehouse.lock")
    before = _cycles(cycles)
    with warehouse_writer("backfill 2024-03-01..2024-03-02", warehouse):
        during = _cycles(cycles)
        assert current_holder(warehouse)["holder"] == "backfill 2024-03-01..2024-03-02"
        assert current_holder(warehouse)["pid"] == os.getpid()
    # The cycle under way when we asked may end; no further one starts before us.
    assert during - before <= 1, f"the looper ran {during - before} cycles while a writer waited"
    waited = [r.getMessage() for r in caplog.records if "waiting for" in r.getMessage()]
    assert waited and "looper cycle" in waited[0], waited
    # And live mode goes on: it cycles again after us.
    _wait_until(lambda: _cycles(cycles) >= during + 2, "the looper to cycle again", proc)


def test_reentry_in_a_thread_and_exclusion_between_threads(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    entered = threading.Event()

    def other_thread() -> None:
        with warehouse_writer("other thread", warehouse):
            entered.set()

    with warehouse_writer("outer", warehouse):
        with warehouse_writer("inner", warehouse):  # re-entry: no deadlock, the record stays the outer's
            assert current_holder(warehouse)["holder"] == "outer"
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert not entered.wait(0.5), "another thread entered while this one held the lock"
    thread.join()
    assert entered.is_set()
    assert current_holder(warehouse) is None  # released: no record left


def test_a_killed_holder_leaves_the_lock_free(tmp_path: Path) -> None:
    warehouse, cycles = tmp_path / "warehouse.duckdb", tmp_path / "cycles.txt"
    # Holds the lock for an hour per cycle: only its death frees it.
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOPER, str(warehouse), str(cycles), "3600"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_until(lambda: _cycles(cycles) >= 1, "the holder to take the lock", proc)
        assert current_holder(warehouse)["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with warehouse_writer("after the crash", warehouse):
        assert current_holder(warehouse)["holder"] == "after the crash"


def test_a_hung_holder_makes_a_waiter_give_up_at_the_limit_with_an_alert_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse, cycles = tmp_path / "warehouse.duckdb", tmp_path / "cycles.txt"
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "data"))  # the alert log goes there
    monkeypatch.setenv("REDSET_WAREHOUSE_LOCK_WAIT_SECONDS", "1")
    proc = subprocess.Popen(  # alive, holding the lock for an hour: a hung holder
        [sys.executable, "-c", LOOPER, str(warehouse), str(cycles), "3600"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _wait_until(lambda: _cycles(cycles) >= 1, "the holder to take the lock", proc)
        with pytest.raises(WarehouseLockTimeout, match=rf"held by looper cycle 0 \(pid {proc.pid}, since "):
            with warehouse_writer("dbt build 2024-03-01", warehouse):
                raise AssertionError("entered while another process held the lock")
        [line] = (tmp_path / "data" / "alerts.log").read_text().splitlines()
        assert " WAREHOUSE LOCK TIMEOUT " in line and f"pid={proc.pid}" in line and "holder=looper cycle 0" in line
        assert "waiter=dbt build 2024-03-01" in line
    finally:
        proc.kill()
        proc.wait()
    with warehouse_writer("after the hung holder", warehouse):  # the queue lock was released too
        assert current_holder(warehouse)["holder"] == "after the hung holder"
