"""bench/_busy.py (`bench/freshness.py --busy-cores N`): the spinners run for the block and are gone
after it, after an error in it too, and a spinner whose bench died without cleaning up ends itself."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_assets.settings import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"
WAIT_S = 60.0


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import _busy

    return _busy


def running(pid: int) -> bool:
    """Whether `pid` exists and is no zombie (an orphan's zombie may wait for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S:.0f}s"
        time.sleep(0.05)


def test_spinners_burn_cpu_in_the_block_and_are_stopped_after_it(busy) -> None:
    with busy.busy_cores(2) as spinners:
        pids = [p.pid for p in spinners]
        assert len(set(pids)) == 2 and all(running(pid) for pid in pids)
        wait_for(lambda: all(busy.cpu_seconds(pid) > 0.05 for pid in pids), "each spinner using CPU")
    assert not any(running(pid) for pid in pids)
    assert all(p.exitcode is not None for p in spinners)  # reaped, not left as zombies

    with busy.busy_cores(0) as none:
        assert none == []


def test_spinners_are_stopped_when_the_block_fails(busy) -> None:
    with pytest.raises(KeyboardInterrupt), busy.busy_cores(1) as spinners:
        pid = spinners[0].pid
        assert running(pid)
        raise KeyboardInterrupt  # Ctrl-C in the middle of a run
    assert not running(pid)


def test_a_spinner_ends_itself_when_its_bench_dies_without_cleaning_up() -> None:
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); import _busy\n"
        "if __name__ == '__main__':\n"
        "    with _busy.busy_cores(1) as s:\n"
        "        print(s[0].pid, flush=True); os._exit(0)  # no finally, no atexit\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(BENCH)], capture_output=True, text=True, timeout=WAIT_S, check=True)
    pid = int(out.stdout.split()[0])
    wait_for(lambda: not running(pid), f"orphaned spinner {pid} ending")
