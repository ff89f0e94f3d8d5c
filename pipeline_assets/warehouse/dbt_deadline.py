"""A deadline on one dbt invocation: REDSET_DBT_MAX_RUNTIME_SECONDS, then dbt is stopped.

dagster-dbt waits on the dbt process for as long as it runs. A timer sends it SIGINT at the
deadline (dbt stops its threads and writes its artifacts, as on Ctrl-C; the asset then fails with
a line saying why) and SIGKILL if it is still there after a grace period. Dagster's run-level
`dagster/max_runtime` needs run monitoring and ends the whole run; this bounds each invocation.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

GRACE_SECONDS = 30.0


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
