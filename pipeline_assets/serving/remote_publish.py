"""The serving snapshot on S3: each publish under a new prefix, then one small pointer object.

    <serving>/publishes/<id>/<table>.parquet, _published.json   (publishes.py's layout, one prefix per publish)
    <serving>/_current.json                                      {"publish": "<id>"}

snapshot.py writes a publish's files on local disk first, in this process's staging folder
(data/staging/serving/.pid-<pid>/<id>/, raw/staging.py's), with the same code as on disk. `switch` then
uploads each file whole with s3fs's put_file (one PutObject, or a multipart upload it completes before it
returns: S3 never lists a half-written object), copies the tables this publish did not export from the
current publish (CopyObject, on the server), uploads the manifest, and only last replaces the pointer:
one PutObject, so a reader gets the old pointer or the new one (S3 reads are strongly consistent
after a write), and no reader looks under the new prefix before that.

After the switch the publishes older than the current one are deleted but for the newest
settings.bound("serving_publishes_kept") - 1, object by object (S3-compatible servers refuse
DeleteObjects: storage/filesystem.py): as on disk, only a reader that resolved the pointer that many
publishes ago finds its files gone. A failed publish deletes what it uploaded; one killed mid-upload
leaves a prefix no pointer names, older than the next publish, whose switch prunes it.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.raw import staging
from pipeline_assets.serving.publishes import POINTER, PUBLISHES, Zone, doomed
from pipeline_assets.storage import filesystem, location


def staging_folder(publish_id: str) -> Path:
    """A fresh local folder for the files of publish `publish_id`, under this process's staging folder."""
    folder = staging.process_folder(location.staging_dir("serving", settings.data_dir())) / publish_id
    folder.mkdir(parents=True)
    return folder


def switch(zone: Zone, publish_id: str, folder: Path, carry_over: list[str]) -> list[str]:
    """Upload the files of `folder` as publish `publish_id`, add the current publish's files of the tables
    in `carry_over` it lacks, then point readers at it and prune; returns the pruned ids."""
    target = zone.path(PUBLISHES, publish_id)
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        tables = [p for p in files if filesystem.is_published(p.name)]
        markers = [p for p in files if p.name.startswith("_")]  # the manifest, last: once it is up, every table is
        for path in tables:
            zone.fs.put_file(str(path), f"{target}/{path.name}")
        previous = zone.current()
        present = previous.names()
        for name in (f"{table}.parquet" for table in carry_over):
            if name in present and not (folder / name).exists():
                zone.fs.cp_file(previous.path(name), f"{target}/{name}")
        for path in markers:
            zone.fs.put_file(str(path), f"{target}/{path.name}")
    except BaseException:
        _delete(zone, publish_id)
        raise
    zone.write_json({"publish": publish_id}, POINTER)
    return prune(zone, settings.bound("serving_publishes_kept"))


def prune(zone: Zone, keep: int) -> list[str]:
    """Delete the publishes older than the current one, but for the newest `keep` - 1 of them."""
    current = zone.current_id()
    if current is None:
        return []
    try:
        listed = zone.fs.ls(zone.path(PUBLISHES), detail=False, refresh=True)
    except FileNotFoundError:
        return []
    gone = doomed([p.rsplit("/", 1)[-1] for p in listed], current, keep)
    for publish_id in gone:
        _delete(zone, publish_id)
    return gone


def _delete(zone: Zone, publish_id: str) -> None:
    """Every object of publish `publish_id`, one by one; best effort (a failed delete is left to the next prune)."""
    prefix = zone.path(PUBLISHES, publish_id)
    try:
        for key in zone.fs.find(prefix):
            zone.fs.rm_file(key)
    except OSError:
        pass
    zone.fs.invalidate_cache(prefix)
