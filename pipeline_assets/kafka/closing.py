"""`consumer.close()` with a deadline.

librdkafka's close leaves the group and waits for its broker threads, with no timeout of its own:
against a broker that hangs (stopped, a network that drops packets) it can wait long. The close
runs on a daemon thread; past the deadline the caller goes on and says so, and the process's exit
takes the client with it. Auto-commit is off everywhere here, so a close never owes a commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

CLOSE_TIMEOUT_S = 30.0


def close_within(consumer: Any, timeout_s: float = CLOSE_TIMEOUT_S, log: Callable[[str], Any] | None = None) -> bool:
    """Close `consumer`, waiting at most `timeout_s`; False (and a log line) when it did not end.
    An error of the close itself is raised, as close() would."""
    errors: list[BaseException] = []

    def close() -> None:
        try:
            consumer.close()
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=close, name="kafka-consumer-close", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        (log or print)(f"consumer.close() did not finish within {timeout_s:.0f}s; going on without it")
        return False
    if errors:
        raise errors[0]
    return True
