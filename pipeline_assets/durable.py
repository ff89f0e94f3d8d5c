"""Helpers for files written under a temporary name and renamed into place: fsync, and whether
the process named in a temporary file (or a pid file) still lives."""

from __future__ import annotations

import json
import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's) contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(payload: dict[str, object], target: Path) -> None:
    """`payload` as JSON at `target`: written under a temporary name, fsynced, renamed into place,
    so a reader sees the old file or the new one."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    fsync_path(tmp)
    os.replace(tmp, target)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fsync_path(path)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` is running (a zombie, exited but not reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    stat = Path(f"/proc/{pid}/stat")
    try:
        # A zombie still answers kill(0); its state letter follows the command name.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return not Path("/proc").is_dir()  # gone since kill(0); off Linux, kill(0) is all we know


def rotate_if_larger(path: Path, max_bytes: int) -> bool:
    """An append-only log at or over `max_bytes` becomes `<name>.1` (replacing the older one), so
    it stays bounded; a writer that still has the old file open finishes its line there."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    os.replace(path, path.with_name(f"{path.name}.1"))
    return True


def remove_dead_temp_files(folder: Path) -> int:
    """Delete `.<name>.<pid>.tmp` files in `folder` whose writer is dead (killed mid-write);
    returns how many. A live writer's files are left alone."""
    removed = 0
    for temp in Path(folder).glob(".*.tmp"):
        pid = temp.name[: -len(".tmp")].rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed
