"""The landing folder on S3 (REDSET_LANDING_DIR or REDSET_STORAGE_URL = s3://...).

An object is only listed once its upload completed (S3 has no half-written objects), so there is
no `.part` or settle wait: every object at the top of the prefix is waiting (hidden, `_`, `.part`
and `.done` names aside). A run downloads each one into its local staging folder (raw/staging.py)
and ingests the copy as a local landing file (ingest.py). `finish` then, in this order, uploads the
raw files and dead letters it made (their deterministic keys), uploads what ingest moved to
processed/ or rejected/ (with its `.error.txt`) under the same folders of the prefix, and only last
deletes the object from the landing prefix. A crash before that delete leaves the object waiting:
the next run ingests it again onto the same keys, so each object lands exactly once.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline_assets.raw import staging
from pipeline_assets.raw.landing.folder import DONE_SUFFIX, PART_SUFFIX, PROCESSED, REJECTED
from pipeline_assets.storage import filesystem


class NoSuchObject(FileNotFoundError):
    """The object a run was asked for is not waiting in the landing prefix."""


def waiting(url: str) -> list[tuple[str, int, int]]:
    """(name, size, last modified in ns) of each object waiting at the top of the landing prefix, oldest first."""
    fs, base = filesystem.filesystem(url)
    try:
        listed = fs.ls(base, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    files = [
        (info["name"].rsplit("/", 1)[-1], int(info["size"]), _ns(info.get("LastModified")))
        for info in listed
        if info["type"] == "file" and filesystem.is_published(info["name"])
        and not info["name"].endswith((PART_SUFFIX, DONE_SUFFIX))
    ]  # fmt: skip
    return sorted(files, key=lambda f: (f[2], f[0]))


def waiting_objects(url: str) -> list[str]:
    """Names of the objects waiting at the top of the landing prefix, oldest first."""
    return [name for name, _, _ in waiting(url)]


def _ns(modified: datetime | None) -> int:
    return 0 if modified is None else int(modified.timestamp() * 1_000_000) * 1000


def processed_already(url: str, name: str) -> bool:
    fs, base = filesystem.filesystem(url)
    return fs.exists(f"{base}/{PROCESSED}/{name}")


def fetch(url: str, name: str, local: Path) -> Path:
    """A local copy of the waiting object `name` in `local` (the run's staging landing folder)."""
    fs, base = filesystem.filesystem(url)
    key = f"{base}/{name}"
    if "/" in name or not fs.isfile(key):
        raise NoSuchObject(f"{url}/{name}: no such object waiting in the landing prefix")
    fs.get_file(key, str(local / name))
    return local / name


def finish(url: str, name: str, local: Path, zones: list[tuple[Path, str | None]]) -> None:
    """After ingest: the raw files and dead letters up (zones: (staging folder, zone URL)), then the
    processed/ or rejected/ copy, then the object leaves the landing prefix (the module docstring)."""
    for folder, zone_url in zones:
        staging.ship(folder, zone_url)
    fs, base = filesystem.filesystem(url)
    moved = False
    for outcome in (PROCESSED, REJECTED):
        for path in sorted((local / outcome).glob("*")) if (local / outcome).is_dir() else []:
            fs.put_file(str(path), f"{base}/{outcome}/{path.name}")
            path.unlink()
            moved = True
    if moved:
        fs.rm_file(f"{base}/{name}")  # one by one: S3-compatible servers refuse DeleteObjects (filesystem.py)
    (local / name).unlink(missing_ok=True)  # a machine error left the copy: the object stays waiting
