"""A zone on object storage: its files are written on local disk first, then uploaded whole.

The writers (zone.py, the dead-letter stream) keep working on a local folder, with their temporary
names, fsyncs and renames; for a zone on S3 that folder is this process's staging folder,
`<staging root>/.pid-<pid>/`. `ship` uploads every published file in it to the same key under the
zone's URL (`arrival_date=.../<name>.parquet`), through the storage's fsspec file system: s3fs's
put_file is one PutObject, or above its block size a multipart upload that it completes before it
returns. Only then is the local copy deleted, and only after every file is up does the caller
commit its offsets. The keys are the deterministic final names, so a re-run after a kill uploads
the same key again. A process killed before its upload leaves its staging folder; the next writer
deletes the folders of dead processes (their offsets were never committed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline_assets.durable import pid_alive
from pipeline_assets.storage import filesystem
from pipeline_assets.storage.location import is_remote

PREFIX = ".pid-"


def process_folder(root: Path) -> Path:
    """This process's staging folder under `root`; the folders of dead processes are deleted first."""
    if root.is_dir():
        for folder in root.glob(f"{PREFIX}*"):
            pid = folder.name.removeprefix(PREFIX)
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
    mine = root / f"{PREFIX}{os.getpid()}"
    mine.mkdir(parents=True, exist_ok=True)
    return mine


def writer_root(local: Path, url: str | None) -> Path:
    """The folder a zone's writer writes in: the zone's own folder, or for a zone on S3 this
    process's staging folder under `local`."""
    return process_folder(local) if url and is_remote(url) else local


def ship(folder: Path, url: str | None) -> list[str]:
    """Upload every published file under `folder` (hidden and `_` names are not published) to
    `url`/<its path under folder>, then delete it locally; returns the keys. Nothing for a local zone."""
    if not url or not is_remote(url):
        return []
    fs, base = filesystem.filesystem(url)
    keys = []
    for path in sorted(p for p in folder.rglob("*.parquet") if filesystem.is_published(p.name)):
        key = f"{base}/{path.relative_to(folder).as_posix()}"
        fs.put_file(str(path), key)
        path.unlink()
        keys.append(key)
    return keys
