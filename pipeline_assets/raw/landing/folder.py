"""The landing folder itself: which files wait in it, which paths belong to it, and the moves
to processed/ and rejected/.

    <settings.landing_dir()>/queries.parquet     a file waiting (parquet, csv or ndjson/jsonl)
                            queries.parquet.part a file being written: never taken
                            queries.parquet.done an optional marker: the writer is done
                            processed/           ingested files move here
                            rejected/            bad files move here, with <name>.error.txt

A file is taken only when whole: a writer writes `<name>.part` (or a hidden or `_` name) and
renames it when done, or writes `<name>` and then `<name>.done`. Either way the sensor also waits
until the size and mtime stay the same across two of its ticks (requests.py), and the run checks
them again before it reads and before it moves the file (ingest.py).
"""

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_assets.durable import fsync_dir
from pipeline_assets.storage.filesystem import is_published

PROCESSED, REJECTED = "processed", "rejected"
PART_SUFFIX, DONE_SUFFIX = ".part", ".done"
# A file modified this recently may still be being copied in; the sensor waits for it.
SETTLE_SECONDS = 2.0


class OutsideLanding(ValueError):
    """A path that is not a file directly in the landing folder; nothing may move it."""


def waiting_files(landing_dir: Path, settle_seconds: float = 0.0) -> list[Path]:
    """Files at the top of the landing folder, oldest first; hidden and `_`-prefixed names and
    `.part` files (being written), `.done` markers and files modified in the last `settle_seconds`
    are left alone."""
    if not landing_dir.is_dir():
        return []
    now = datetime.now().timestamp()
    files = [
        p
        for p in landing_dir.iterdir()
        if p.is_file()
        and is_published(p.name)
        and not p.name.endswith((PART_SUFFIX, DONE_SUFFIX))
        and now - p.stat().st_mtime >= settle_seconds
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def landing_file(path: str | Path, landing_dir: Path) -> Path:
    """`path` (relative ones are taken in the landing folder) once it is known to sit directly in
    the landing folder, symlinks resolved: never in processed/ or rejected/, never elsewhere."""
    folder = landing_dir.resolve()
    resolved = (landing_dir / path).resolve()
    if resolved.parent != folder or resolved.is_dir():
        where = f" (it is {resolved})" if str(resolved) != str(path) else ""
        raise OutsideLanding(
            f"{path}{where} is not a file in the landing folder {folder}: only files directly in it "
            f"are ingested, not folders or files in {PROCESSED}/, {REJECTED}/ or elsewhere; nothing was moved"
        )
    return resolved


def file_state(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): what the sensor remembers of a file."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def run_config(path: Path | str) -> dict[str, Any]:
    """The run of one file, with the size and mtime it has now (the sensor's view): the run checks
    them again. A path that is no file here gets none (the run says what is wrong with it)."""
    config: dict[str, Any] = {"path": str(path)}
    if Path(path).is_file():
        config["size"], config["mtime_ns"] = file_state(Path(path))
    return {"ops": {"landing_queries": {"config": config}}}


def done_marker(path: Path) -> Path:
    return path.with_name(path.name + DONE_SUFFIX)


def sha8(path: Path) -> str:
    """The first 8 hex digits of the file's SHA-256: names its raw files and tells copies apart."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:8]


def move(path: Path, folder: Path, digest: str) -> Path:
    """Move a file into `folder` durably; a different file of the same name there is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists() and sha8(target) != digest:
        target = folder / f"{path.stem}-{digest}{path.suffix}"
    if path.resolve() != target.resolve():
        shutil.move(str(path), target)
    done_marker(path).unlink(missing_ok=True)  # the marker's file has left
    fsync_dir(folder)
    fsync_dir(path.parent)
    return target


def reject(path: Path, landing_dir: Path, message: str) -> Path | None:
    """Move a bad file to rejected/ and write `<name>.error.txt` beside it saying why."""
    if not path.exists():
        return None
    target = move(path, landing_dir / REJECTED, sha8(path))
    error = target.with_name(target.name + ".error.txt")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    error.write_text(f"{message}\n\nrejected at {when} from {path}\n")
    return target
