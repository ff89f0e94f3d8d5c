"""A one-thread pipeline stage: the raw dump parses and writes one chunk while it consumes the next.

Arrow's JSON reader, Parquet writer and librdkafka all release the GIL, so consuming and
processing overlap. At most `depth` items are queued or being handled at once, which keeps
memory bounded: when processing falls behind, put() waits, and so does consumption.
"""

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class Worker:
    """Calls `handle(item)` on a background thread for each item put, in order."""

    def __init__(self, handle: Callable[[Any], None], depth: int = 1, name: str = "raw-worker") -> None:
        self._handle = handle
        self._queue: queue.Queue = queue.Queue()
        self._slots = threading.Semaphore(depth)  # items queued or being handled
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        """Queue an item; raises the worker's error if it failed on an earlier one."""
        while not self._slots.acquire(timeout=0.2):
            self.check()
        self.check()
        self._queue.put(item)

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait until every queued item is handled; re-raise the worker's error, if any."""
        self._queue.put(_STOP)
        self._thread.join()
        self.check()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:  # after a failure, drain without handling
                try:
                    self._handle(item)
                except BaseException as exc:  # handed to the caller's thread by check()
                    self._error = exc
            del item  # free the chunk before the next one is let in
            self._slots.release()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # the caller failed: stop the thread, keep the caller's exception
            self._queue.put(_STOP)
            self._thread.join()
