"""Background work at a lower CPU priority, without lowering its caller's (issue #28).

`at_low_priority(fn, *args)` runs `fn` in a thread of its own whose nice value is raised by
BACKGROUND_NICE: on Linux a nice value belongs to a thread, and the threads it starts inherit
it, so the caller (a run worker, a test process, live mode) keeps its own priority, which an
unprivileged process could never get back once lowered. Elsewhere `fn` just runs.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BACKGROUND_NICE = 10  # under a busy machine, the live cycle and the batch builds get the CPU first


def at_low_priority(fn: Callable[..., T], *args: object) -> T:
    """fn(*args) at BACKGROUND_NICE more than the caller's nice value; its result or its exception.
    The thread is a daemon: an interrupt of the caller (a run's termination) does not wait for it."""
    if not sys.platform.startswith("linux"):
        return fn(*args)
    outcome: dict[str, object] = {}

    def lowered() -> None:
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller as it is
            outcome["error"] = exc

    thread = threading.Thread(target=lowered, name="low-priority", daemon=True)
    thread.start()
    thread.join()  # a signal interrupts it, as it would the call itself
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
