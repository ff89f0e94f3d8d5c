"""Arrival dates owed a build, on disk before the offsets that brought them are committed.

A raw dump's checkpoint (dump/checkpoint.py) publishes its files, writes one record here naming
their arrival dates, and only then commits. Whatever happens after a commit (the run fails at its
next chunk, a consumer process is OOM-killed, `dagster dev` is killed), the dates of every
committed row are owed. Records are files `<data dir>/owed_dates/<writer>-<ns>-<pid>.json`,
written under a hidden name, fsynced and renamed, so a reader never sees half of one and two
writers never share a name (live mode's writer names start with `live-`).

Whoever builds takes the records: build_marts_on_new_raw_batches (sensors.py) into its cursor, live
mode into its owed.json (live/cycle.py). Taking is two steps: read the records and keep their dates
in the taker's own durable state, then `settle` (delete) them once that state is saved. A crash
in between reads them again, which only builds a date twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pipeline_assets import settings
from pipeline_assets.durable import fsync_dir, fsync_path

LIVE_PREFIX = "live-"  # live mode's batch ids (live/cycle.py): its records are its own

_logger = logging.getLogger(__name__)


def owed_dir() -> Path:
    return settings.data_dir() / "owed_dates"


@dataclass(frozen=True)
class OwedRecord:
    name: str
    dates: frozenset[date]
    written_at: float  # Unix seconds


def record(days: Iterable[date], writer: str, root: Path | None = None) -> Path | None:
    """Write one durable record of `days` (none when empty); returns its path."""
    days = sorted(set(days))
    if not days:
        return None
    root = root or owed_dir()
    root.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in writer)
    path = root / f"{safe}-{time.time_ns()}-{os.getpid()}.json"
    staged = root / f".{path.name}.tmp"
    staged.write_text(json.dumps({"dates": [d.isoformat() for d in days], "writer": writer, "written_at": time.time()}))
    fsync_path(staged)
    os.replace(staged, path)
    fsync_dir(root)
    return path


def pending(root: Path | None = None, live: bool | None = None, log: Any = _logger) -> list[OwedRecord]:
    """The records not settled yet, oldest first; `live` True: only live mode's, False: none of
    live mode's. A record that cannot be read is logged, naming it, and left in place."""
    root = root or owed_dir()
    if not root.is_dir():
        return []
    records = []
    for path in sorted(root.glob("*.json")):
        if path.name.startswith(".") or (live is not None and path.name.startswith(LIVE_PREFIX) != live):
            continue
        try:
            data = json.loads(path.read_text())
            days = frozenset(date.fromisoformat(d) for d in data["dates"])
            records.append(OwedRecord(path.name, days, float(data["written_at"])))
        except FileNotFoundError:
            continue  # settled by another taker meanwhile
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(f"{path}: not an owed-dates record ({type(exc).__name__}: {exc}); left in place")
    return sorted(records, key=lambda r: r.written_at)


def settle(names: Iterable[str], root: Path | None = None) -> None:
    """Delete records whose dates the taker has saved in its own state."""
    root = root or owed_dir()
    for name in names:
        (root / name).unlink(missing_ok=True)
