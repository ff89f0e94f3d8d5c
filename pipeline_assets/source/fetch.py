"""Fetching a Redset URL once into the local cache (settings.data_dir()/cache/<host>/<path>).

A URL never writes outside the cache (no `..` or odd host), and plain http:// is refused unless
asked for (`--insecure`, REDSET_INSECURE_HTTP=1): the rows would be open to tampering on the way.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from pipeline_assets import settings


def is_url(source: str | Path) -> bool:
    return str(source).startswith(("https://", "http://"))


_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")


class UnsafeSource(ValueError):
    """A SOURCE URL that would write outside the cache, or fetch over plain http unasked."""


def cache_path(url: str) -> Path:
    """Where a downloaded URL lives: settings.data_dir()/cache/<host>/<path>, checked to stay there."""
    parsed = urlparse(url)
    segments = [s for s in parsed.path.split("/") if s]
    bad = [s for s in segments if unquote(s) in (".", "..") or "\\" in unquote(s) or "/" in unquote(s)]
    if not _HOST_RE.match(parsed.netloc) or ".." in parsed.netloc or bad or not segments:
        raise UnsafeSource(f"SOURCE {url!r}: a URL needs a plain host and a path without '.', '..' or encoded slashes")
    cache = settings.data_dir() / "cache"
    target = cache.joinpath(parsed.netloc, *segments)
    if not target.resolve().is_relative_to(cache.resolve()):
        raise UnsafeSource(f"SOURCE {url!r} would be written outside the cache {cache}")
    return target


def check_scheme(url: str) -> None:
    """http:// only when asked for: `--insecure` (REDSET_INSECURE_HTTP=1)."""
    if url.startswith("http://") and not settings.insecure_http():
        raise UnsafeSource(f"SOURCE {url!r} is plain http: use https, or pass --insecure to fetch it anyway")


def download(url: str, *, progress: bool = True, chunk_bytes: int = 1 << 20) -> Path:
    """Fetch `url` once into the cache (with a progress bar) and return the local path.

    DuckDB's httpfs extension cannot be installed offline, so we download with requests.
    The file is written under a temporary name and renamed, so an interrupted download is
    never mistaken for a complete one.
    """
    import requests
    from tqdm import tqdm

    check_scheme(url)
    target = cache_path(url)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")  # one per process
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length") or 0) or None
            with open(partial, "wb") as out, tqdm(
                total=total, unit="B", unit_scale=True, desc=f"download {target.name}", disable=not progress
            ) as bar:
                for chunk in response.iter_content(chunk_bytes):
                    out.write(chunk)
                    bar.update(len(chunk))
        if total is not None and partial.stat().st_size != total:
            raise OSError(f"{url}: got {partial.stat().st_size} of {total} bytes")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
