"""`--busy-cores N` of bench/freshness.py: N CPU-bound processes of the bench's own, spinning for the
whole run, so a figure is taken with that many cores kept busy by someone else (issue #28).

`busy_cores(n)` starts them and always stops them when its block ends, on an error or Ctrl-C too;
each also ends by itself once its parent is gone (a bench killed with SIGKILL leaves no spinner).
It yields the processes, and `cpu_seconds` says how much CPU they got, as the report shows.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager

STOP_WAIT_S = 5.0


def spin(parent: int) -> None:
    """Burn one core until the parent process is gone (or this one is terminated)."""
    n = 0
    while True:
        n += 1
        if n % 5_000_000 == 0 and os.getppid() != parent:  # re-parented: the bench died
            return


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0.0 once it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@contextmanager
def busy_cores(n: int) -> Iterator[list[multiprocessing.Process]]:
    """`n` spinning processes for the block (none for n = 0), terminated and reaped after it."""
    # spawn: a clean interpreter, not a fork of a bench that may hold threads and a broker's pipes.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=spin, args=(os.getpid(),), name=f"busy-core-{i}", daemon=True) for i in range(n)]
    try:
        for p in processes:
            p.start()
        yield processes
    finally:
        for p in processes:
            if p.pid is not None:
                p.terminate()
        for p in processes:
            if p.pid is not None:
                p.join(STOP_WAIT_S)
                if p.is_alive():
                    p.kill()
                    p.join()
