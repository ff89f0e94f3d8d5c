"""The serving snapshot switched whole: one folder per publish and a pointer to the current one.

    <serving>/publishes/<id>/<table>.parquet, _published.json   a publish's files, never changed once switched to
    <serving>/_current.json                                      {"publish": "<id>"}: the pointer

A publish writes every file into a new folder, then replaces the pointer (written under a temporary
name, fsynced, renamed). A reader resolves the pointer once and reads all the tables it needs from
that folder, so it sees one publish, never a mix of two (file-by-file renames in one folder could
show a new table beside an old one). Ids sort by time (UTC stamp, then a random tag).

After each switch the publishes older than the current one are deleted but for the newest
settings.bound("serving_publishes_kept") - 1: a reader that opened a file keeps it (POSIX), and only
one that resolved the pointer that many publishes ago finds its folder gone.
Folders newer than the current one are left alone: a publish under way, or one a killed publisher
left, which the next switch prunes.

A serving folder without a pointer (hand-made, or from before pointers) is read as it is: files at the top.

The zone may be on S3 (REDSET_SERVING_DIR or REDSET_STORAGE_URL = s3://...): the same layout, one prefix
per publish, written by remote_publish.py. Readers go through one path for both: `zone(serving)` opens
the zone's file system (storage/filesystem.py), `Zone.current()` resolves the pointer, and the
`Publish` it returns names the folder and reads its files through that file system.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_assets import settings
from pipeline_assets.durable import fsync_dir, write_json_atomically
from pipeline_assets.storage import filesystem
from pipeline_assets.storage.location import is_remote

POINTER = "_current.json"
PUBLISHES = "publishes"


@dataclass(frozen=True)
class Zone:
    """The serving zone on its file system: fsspec's local one for a folder, s3fs for s3://."""

    url: str
    fs: Any
    root: str  # the zone's path on `fs` (bucket/prefix on S3)

    @property
    def remote(self) -> bool:
        return is_remote(self.url)

    @property
    def location(self) -> str | Path:
        """The zone as the rest of the code names it: a Path on disk, the URL on S3."""
        return self.url if self.remote else Path(self.root)

    def path(self, *names: str) -> str:
        return "/".join([self.root, *names])

    def read_json(self, name: str) -> dict[str, Any] | None:
        """The JSON file `name` at the top of the zone (a state file, the pointer), or None."""
        return _read_json(self.fs, self.path(name))

    def write_json(self, value: dict[str, Any], name: str) -> None:
        """`value` as the file `name` at the top of the zone; a reader sees the old file or the new one:
        on disk by rename, on S3 because an object is replaced whole by one PutObject."""
        if self.remote:
            self.fs.pipe_file(self.path(name), json.dumps(value, indent=2, sort_keys=True).encode())
        else:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            write_json_atomically(value, Path(self.root) / name)

    def current_id(self) -> str | None:
        """The id the pointer names, or None before the first publish with a pointer."""
        try:
            pointer = self.read_json(POINTER)
            return None if pointer is None else str(pointer["publish"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.url}/{POINTER} is not a publish pointer ({exc})") from exc

    def current(self) -> Publish:
        """The publish the pointer names now (or the files at the top, without a pointer)."""
        return Publish(self, self.current_id())


@dataclass(frozen=True)
class Publish:
    """One publish's files, read through its zone's file system."""

    zone: Zone
    publish_id: str | None  # None: no pointer, the files at the top of the zone

    @property
    def folder(self) -> str:
        return self.zone.root if self.publish_id is None else self.zone.path(PUBLISHES, self.publish_id)

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def names(self) -> set[str]:
        """The names of its files (one listing; refreshed, as a pointer-less zone's files change)."""
        try:
            return {p.rsplit("/", 1)[-1] for p in self.zone.fs.ls(self.folder, detail=False, refresh=True)}
        except FileNotFoundError:
            return set()

    def read_json(self, name: str) -> dict[str, Any] | None:
        return _read_json(self.zone.fs, self.path(name))

    def read_table(self, name: str, known: tuple[Any, ...] | None = None) -> tuple[tuple[Any, ...], pa.Table | None]:
        """(the file's version, its table), the table None when the version is `known` (the reader has it).
        Read through one handle: a scan that opens a path twice could mix a file replaced in between.
        FileNotFoundError when it is not there."""
        path = self.path(name)
        with self.zone.fs.open(path, "rb") as handle:
            try:
                stat = os.fstat(handle.fileno())
                version: tuple[Any, ...] = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
            except OSError:  # an object (io.UnsupportedOperation): its ETag says which one
                version = (path, str(handle.details.get("ETag")), handle.details.get("size"))
            return version, None if version == known else pq.read_table(handle)


def _read_json(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None


Serving = Union[str, "os.PathLike[str]", Zone]  # a folder, an s3:// URL, or a zone already opened


def zone(serving: Serving) -> Zone:
    """The serving zone at `serving`, its file system opened. On S3 its storage is checked first, so a
    missing bucket or bad credentials is one line naming the URL (storage/filesystem.py's check)."""
    if isinstance(serving, Zone):
        return serving
    url = str(serving)
    if is_remote(url):
        filesystem.check(url)
    fs, root = filesystem.filesystem(url)
    return Zone(url, fs, root)


def current(serving: Serving) -> Publish:
    """The publish a reader should read now: resolve once, read every table from it."""
    return zone(serving).current()


def new_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def doomed(ids: list[str], current: str, keep: int) -> list[str]:
    """Of the publish ids in a zone, those a switch to `current` deletes: the older ones but for the newest keep - 1."""
    older = sorted(i for i in ids if i < current)
    return older[: max(0, len(older) - max(0, keep - 1))]


# --- the writer on local disk (remote_publish.py writes a zone on S3) -------------------------------


def new_folder(serving_dir: Path) -> tuple[str, Path]:
    """A fresh, empty folder for the next publish, and its id."""
    publish_id = new_id()
    folder = serving_dir / PUBLISHES / publish_id
    folder.mkdir(parents=True)
    return publish_id, folder


def current_id(serving_dir: Serving) -> str | None:
    return zone(serving_dir).current_id()


def current_dir(serving_dir: Path) -> Path:
    """Where the current publish's files are on disk: its folder, or the serving folder itself without a pointer."""
    return Path(current(serving_dir).folder)


def switch(serving_dir: Path, publish_id: str) -> list[str]:
    """Point readers at `publish_id` (whose folder is complete and fsynced), then prune; returns the pruned ids."""
    folder = serving_dir / PUBLISHES / publish_id
    fsync_dir(folder)
    fsync_dir(folder.parent)
    zone(serving_dir).write_json({"publish": publish_id}, POINTER)  # temporary name, fsync, rename
    fsync_dir(serving_dir)
    _remove_unpointed_files(serving_dir)
    return prune(serving_dir, settings.bound("serving_publishes_kept"))


def prune(serving_dir: Path, keep: int) -> list[str]:
    """Delete the publishes older than the current one, but for the newest `keep` - 1 of them."""
    current = current_id(serving_dir)
    root = serving_dir / PUBLISHES
    if current is None or not root.is_dir():
        return []
    gone = doomed([p.name for p in root.iterdir() if p.is_dir()], current, keep)
    for publish_id in gone:
        shutil.rmtree(root / publish_id, ignore_errors=True)
    return gone


def _remove_unpointed_files(serving_dir: Path) -> None:
    """The files a publish from before pointers left at the top: no reader looks there once a pointer exists."""
    for path in [*serving_dir.glob("*.parquet"), serving_dir / "_published.json"]:
        path.unlink(missing_ok=True)
