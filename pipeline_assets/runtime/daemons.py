"""Long-running JVMs the project starts, waits for and stops (the Kafka broker, S3Proxy, the Spark cluster):
each in its own session so it outlives the command that started it, recorded by pid, stopped
with SIGTERM and, after a timeout, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from pipeline_assets.durable import pid_alive

# Processes this Python process started, so that stopping them also reaps them (no zombies in tests).
_children: dict[int, subprocess.Popen] = {}

# Stop signals a daemon must hear. A child inherits an ignored signal across exec, and a JVM started
# with SIGTERM ignored never installs its handler: each stop would wait out its timeout, then SIGKILL.
# That happens in any process started without job control (SIGINT ignored) once Dagster has run in it:
# its capture_interrupts() copies SIGINT's handler onto SIGTERM.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _default_stop_signals() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def spawn(cmd: Sequence[str], cwd: Path, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start `cmd` in a new session (it ignores the terminal's Ctrl-C and leads its own process
    group), its stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    # Only when needed: a preexec_fn is a fork-time risk in a threaded process.
    ignored = any(signal.getsignal(s) == signal.SIG_IGN for s in _STOP_SIGNALS)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_default_stop_signals if ignored else None,
        )  # fmt: skip
    _children[proc.pid] = proc
    return proc


def wait_ready(
    proc: subprocess.Popen, ready: Callable[[], bool], timeout: float, interval: float
) -> Literal["ready", "exited", "timeout"]:
    """Poll `ready()` until it holds, the process exits, or `timeout` seconds pass."""

    def check() -> str:
        if ready():
            return "ready"
        return "exited" if proc.poll() is not None else "waiting"

    return Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(interval),
        retry=retry_if_result(lambda outcome: outcome == "waiting"), retry_error_callback=lambda _: "timeout",
    )(check)  # fmt: skip


def is_alive(pid: int) -> bool:
    if pid in _children:
        return _children[pid].poll() is None  # our child: poll() also reaps it
    return pid_alive(pid)


def command_line(pid: int) -> str:
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
    return subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True).stdout


def runs(pid: int, marker: str) -> bool:
    """`pid` lives and its command line names `marker` (a main class): guards against a stale pid
    file whose pid now belongs to another program."""
    return is_alive(pid) and marker in command_line(pid)


def send_signal(pid: int, signum: int, group: bool = False) -> None:
    try:
        os.killpg(pid, signum) if group else os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it exited on its own meanwhile


def wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def terminate(pid: int, timeout: float, group: bool = False) -> bool:
    """SIGTERM `pid` (with `group`: its whole process group), SIGKILL after `timeout` seconds.
    Returns True when it stopped on SIGTERM."""
    send_signal(pid, signal.SIGTERM, group)
    graceful = wait_exit(pid, timeout)
    if not graceful:
        send_signal(pid, signal.SIGKILL, group)
        wait_exit(pid, 10)
    _children.pop(pid, None)
    return graceful


def group_members(pgids: Sequence[int]) -> list[int]:
    """Live processes in any of the process groups `pgids` (e.g. executors a worker left behind)."""
    out = subprocess.run(["ps", "-A", "-o", "pid=,pgid=,stat="], capture_output=True, text=True).stdout
    wanted = set(pgids)
    members = []
    for line in out.splitlines():
        pid, pgid, stat = line.split()
        # Zombies are done; e.g. spark-class's launcher subshell waits there for PID 1 to reap it.
        if int(pgid) in wanted and not stat.startswith("Z"):
            members.append(int(pid))
    return members


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} is missing)"
