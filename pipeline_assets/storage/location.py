"""Each zone's URL, from one setting: REDSET_STORAGE_URL.

    REDSET_STORAGE_URL unset        every zone under the data folder, as before (data/raw, data/serving, ...)
    REDSET_STORAGE_URL=/some/dir    every zone under that folder
    REDSET_STORAGE_URL=s3://b/pre   every zone under s3://b/pre/ (endpoint, region and credentials from
                                    the usual AWS_* variables, never from the project's files)

A zone's own variable (ZONES: REDSET_RAW_DIR, ...), when set, overrides the base for that zone: a
folder or an s3:// URL. The DuckDB warehouse file is not a zone: it stays local (one writer).

Pure functions of the environment: settings passes the data folder in (this module imports nothing
of the package, so settings can import it).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

STORAGE_VARIABLE = "REDSET_STORAGE_URL"
REMOTE_SCHEMES = ("s3",)

# zone -> (its own variable, its folder under the base).
ZONES: dict[str, tuple[str, str]] = {
    "raw": ("REDSET_RAW_DIR", "raw"),
    "dead_letters": ("REDSET_DEAD_LETTER_DIR", "dead_letters"),
    "landing": ("REDSET_LANDING_DIR", "landing"),
    "serving": ("REDSET_SERVING_DIR", "serving"),
    "spark_warehouse": ("REDSET_SPARK_WAREHOUSE", "spark-warehouse"),
}


class StorageError(RuntimeError):
    """A storage URL is malformed or its storage does not answer; the message names the URL, never a secret."""


def is_remote(url: str) -> bool:
    """True for an object-store URL (s3://); False for a folder. Another scheme is an error."""
    scheme = urlsplit(url).scheme
    if not scheme or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # a path (or a Windows drive)
        return False
    if scheme not in REMOTE_SCHEMES:
        raise StorageError(f"{url}: the scheme {scheme}:// is not supported; use a folder or s3://bucket/prefix")
    return True


def split_s3(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if not parts.netloc:
        raise StorageError(f"{url}: an s3 URL needs a bucket: s3://bucket/prefix")
    return parts.netloc, parts.path.strip("/")


def _normalised(url: str) -> str:
    if is_remote(url):
        bucket, prefix = split_s3(url)
        return f"s3://{bucket}/{prefix}".rstrip("/")
    return str(Path(url).expanduser().resolve())


def base_url(data_dir: Path) -> str:
    """REDSET_STORAGE_URL, or the data folder."""
    return _normalised(os.environ.get(STORAGE_VARIABLE, "").strip() or str(data_dir))


def zone_url(zone: str, data_dir: Path) -> str:
    """The zone's own variable if set, else <base>/<its folder>."""
    variable, folder = ZONES[zone]
    own = os.environ.get(variable, "").strip()
    if own:
        return _normalised(own)
    base = base_url(data_dir)
    return f"{base}/{folder}" if is_remote(base) else str(Path(base) / folder)


def staging_dir(zone: str, data_dir: Path) -> Path:
    """The local folder where a zone's files are staged before they are uploaded whole to s3://."""
    return data_dir / "staging" / zone


def writer_dir(zone: str, data_dir: Path) -> Path:
    """The local folder a zone's writers start from: the zone itself on disk, or for a zone on
    s3:// the folder they stage files in before uploading them whole (raw/staging.py), which also
    keeps the dump's own records (topic generations, lost offsets) so far."""
    url = zone_url(zone, data_dir)
    return staging_dir(zone, data_dir) if is_remote(url) else Path(url)


def local_dir(zone: str, data_dir: Path) -> Path:
    """The zone's folder, for the steps that work on local disk only (so far)."""
    url = zone_url(zone, data_dir)
    if is_remote(url):
        variable, _ = ZONES[zone]
        raise StorageError(
            f"the {zone} zone is at {url} ({variable} or {STORAGE_VARIABLE}), but this step reads and writes it "
            f"on local disk only so far: set {variable} to a local folder"
        )
    return Path(url)
