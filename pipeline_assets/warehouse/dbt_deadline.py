"""A deadline on one dbt invocation: REDSET_DBT_MAX_RUNTIME_SECONDS, then dbt is stopped.

dagster-dbt waits on the dbt process for as long as it runs. A timer sends it SIGINT at the
deadline (dbt stops its threads and writes its artifacts, as on Ctrl-C; the asset then fails with
a line saying why) and SIGKILL if it is still there after a grace period. Dagster's run-level
`dagster/max_runtime` needs run monitoring and ends the whole run; this bounds each invocation.

Live mode's dbt runs in its own process (live/warm_dbt.py), where there is no process to stop:
past the deadline, `cancel_after` cancels the adapter's open queries (what dbt does on Ctrl-C),
again every CANCEL_EVERY_S, since dbt then goes on with the models that do not depend on them.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline_assets import settings

GRACE_SECONDS = 30.0
CANCEL_EVERY_S = 0.2
SETTING = "REDSET_DBT_MAX_RUNTIME_SECONDS"


def max_runtime_seconds() -> int:
    return settings.bound("dbt_max_runtime_seconds")


def stopped_message(command: str) -> str:
    """The one line of a dbt invocation the deadline stopped."""
    return f"{command} ran past {SETTING} ({max_runtime_seconds()}s) and was stopped"


@contextmanager
def process_deadline(process: subprocess.Popen, seconds: float, grace_s: float = GRACE_SECONDS) -> Iterator[Callable[[], bool]]:
    """While the block runs, stop `process` once it has run `seconds`; yields "did the deadline fire?"."""
    fired = threading.Event()

    def stop() -> None:
        if process.poll() is not None:
            return
        fired.set()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield fired.is_set
    finally:
        timer.cancel()


@contextmanager
def cancel_after(seconds: float, cancel: Callable[[], object]) -> Iterator[Callable[[], bool]]:
    """While the block runs, once it has run `seconds`, call `cancel` every CANCEL_EVERY_S until it
    ends; yields "did the deadline fire?"."""
    done, fired = threading.Event(), threading.Event()

    def watch() -> None:
        if done.wait(seconds):
            return
        fired.set()
        while not done.is_set():
            cancel()
            done.wait(CANCEL_EVERY_S)

    watcher = threading.Thread(target=watch, name="dbt-deadline", daemon=True)
    watcher.start()
    try:
        yield fired.is_set
    finally:
        done.set()
        watcher.join()
