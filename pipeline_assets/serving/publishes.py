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
"""

from __future__ import annotations

import json
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.durable import fsync_dir, write_json_atomically

POINTER = "_current.json"
PUBLISHES = "publishes"


def new_folder(serving_dir: Path) -> tuple[str, Path]:
    """A fresh, empty folder for the next publish, and its id."""
    publish_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
    folder = serving_dir / PUBLISHES / publish_id
    folder.mkdir(parents=True)
    return publish_id, folder


def current_id(serving_dir: Path) -> str | None:
    """The id the pointer names, or None before the first publish with a pointer."""
    try:
        return str(json.loads((serving_dir / POINTER).read_text())["publish"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{serving_dir / POINTER} is not a publish pointer ({exc})") from exc


def current_dir(serving_dir: Path) -> Path:
    """Where the current publish's files are: its folder, or the serving folder itself without a pointer."""
    publish_id = current_id(serving_dir)
    return serving_dir if publish_id is None else serving_dir / PUBLISHES / publish_id


def switch(serving_dir: Path, publish_id: str) -> list[str]:
    """Point readers at `publish_id` (whose folder is complete and fsynced), then prune; returns the pruned ids."""
    folder = serving_dir / PUBLISHES / publish_id
    fsync_dir(folder)
    fsync_dir(folder.parent)
    write_json_atomically({"publish": publish_id}, serving_dir / POINTER)
    fsync_dir(serving_dir)
    _remove_unpointed_files(serving_dir)
    return prune(serving_dir, settings.bound("serving_publishes_kept"))


def prune(serving_dir: Path, keep: int) -> list[str]:
    """Delete the publishes older than the current one, but for the newest `keep` - 1 of them."""
    current = current_id(serving_dir)
    root = serving_dir / PUBLISHES
    if current is None or not root.is_dir():
        return []
    older = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name < current)
    doomed = older[: max(0, len(older) - max(0, keep - 1))]
    for publish_id in doomed:
        shutil.rmtree(root / publish_id, ignore_errors=True)
    return doomed


def _remove_unpointed_files(serving_dir: Path) -> None:
    """The files a publish from before pointers left at the top: no reader looks there once a pointer exists."""
    for path in [*serving_dir.glob("*.parquet"), serving_dir / "_published.json"]:
        path.unlink(missing_ok=True)
