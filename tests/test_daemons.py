"""Daemons hear SIGTERM even when the process that starts them ignores it (pipeline_assets/runtime/daemons.py).

A process started without job control (`cmd &` in a script, CI) ignores SIGINT; once Dagster has run
in it, capture_interrupts() has copied that onto SIGTERM. Children inherit ignored signals, so a
broker or Spark daemon started there would ignore every stop and be killed after the timeout."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from dagster._utils.interrupts import capture_interrupts

from pipeline_assets.runtime import daemons

STOP_TIMEOUT_S = 15.0


def spawn_and_stop(tmp_path: Path) -> bool:
    proc = daemons.spawn(["sleep", "120"], cwd=tmp_path, log=tmp_path / "sleep.log")
    return daemons.terminate(proc.pid, STOP_TIMEOUT_S, group=True)


def test_a_daemon_started_after_dagster_ran_without_job_control_stops_on_sigterm(tmp_path: Path) -> None:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job of a script
        with capture_interrupts():  # what every in-process Dagster execution does
            pass
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the situation this guards against
        assert spawn_and_stop(tmp_path) is True

        from_thread: list[bool] = []  # sensors and run workers start daemons off the main thread
        worker = threading.Thread(target=lambda: from_thread.append(spawn_and_stop(tmp_path)))
        worker.start()
        worker.join()
        assert from_thread == [True]
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)

