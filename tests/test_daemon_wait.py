"""A started daemon is waited for until it answers, exits or times out (runtime/daemons.wait_ready):
the broker and S3Proxy each turn the outcome into their own error."""

from __future__ import annotations

from pathlib import Path

from pipeline_assets.runtime import daemons


def test_wait_ready_tells_ready_from_exited_from_timed_out(tmp_path: Path) -> None:
    calls = []

    def ready_on_third_call() -> bool:
        calls.append(1)
        return len(calls) >= 3

    sleeper = daemons.spawn(["sleep", "30"], cwd=tmp_path, log=tmp_path / "sleep.log")
    try:
        assert daemons.wait_ready(sleeper, ready_on_third_call, timeout=10, interval=0.01) == "ready"
        assert len(calls) == 3
        assert daemons.wait_ready(sleeper, lambda: False, timeout=0.3, interval=0.05) == "timeout"
    finally:
        daemons.terminate(sleeper.pid, 5)
    failing = daemons.spawn(["sh", "-c", "exit 3"], cwd=tmp_path, log=tmp_path / "exit.log")
    assert daemons.wait_ready(failing, lambda: False, timeout=10, interval=0.05) == "exited"
    assert failing.returncode == 3
