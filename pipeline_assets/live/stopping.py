"""How live mode stops: the first SIGINT or SIGTERM ends the loop after its current cycle.

Ctrl-C, `kill` and Dagster's run termination (it sends SIGINT to the run's process) set a stop
flag that the loop checks between cycles and during its pause, so the cycle in progress ends as
usual: its rows durable, its offsets committed, its dates built and published. A second signal
stops at once (KeyboardInterrupt); even then nothing half-written is left and no offset is
committed before its rows are durable: the raw dump writes temporary files that are renamed only
before the commit, and deletes them when interrupted (raw/zone.py, raw/dump/checkpoint.py).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(stop: threading.Event, log: Callable[[str], Any]) -> Iterator[None]:
    """While the block runs, the first SIGINT/SIGTERM sets `stop`, the second raises KeyboardInterrupt.
    Signal handlers belong to the main thread; elsewhere this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log(f"live mode: {signal.Signals(signum).name} received, stopping after the current cycle (again: at once)")

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
