"""The demo's child processes: started in their own process group with a log each, waited for,
and stopped with their children."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.demo.addresses import HOST

STOP_TIMEOUT_S = 20.0


class DemoError(RuntimeError):
    pass


def log_dir() -> Path:
    return settings.data_dir() / "demo-logs"


@dataclass
class Service:
    """A process this demo started: its own process group, so stopping it stops its children."""

    name: str
    proc: subprocess.Popen
    log: Path
    url: str | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        print(f"  stopping {self.name} (pid {self.proc.pid}) ...", flush=True)
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # `dagster dev` leaves its webserver/daemon in the group; make sure none outlives us.
        _signal_group(self.proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def tool(name: str) -> str:
    """A console script of this environment (the venv's bin), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise DemoError(f"`{name}` not found: run `make install` first")
    return found


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status < 500
    except OSError:
        return False


def wait_for(service: Service, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(url):
        if not service.alive():
            raise DemoError(f"{service.name} exited with status {service.proc.returncode}; see {service.log}")
        if time.monotonic() > deadline:
            raise DemoError(f"{service.name} did not answer on {url} within {timeout:.0f}s; see {service.log}")
        time.sleep(1)


def spawn(name: str, cmd: list[str], env: dict[str, str], cwd: Path | None = None, url: str | None = None) -> Service:
    log_dir().mkdir(parents=True, exist_ok=True)
    log = log_dir() / f"{name}.log"
    with open(log, "ab") as out:
        out.write(f"\n--- {datetime.now().isoformat(timespec='seconds')} {' '.join(cmd)}\n".encode())
        out.flush()
        # A new session: the terminal's Ctrl-C reaches only this command, which then stops
        # each service in order.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd or settings.PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(name, proc, log, url)
