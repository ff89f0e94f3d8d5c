"""Fetching a Redset URL once into the local cache (settings.data_dir()/cache/<host>/<path>)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from pipeline_assets import settings


def is_url(source: str | Path) -> bool:
    return str(source).startswith(("https://", "http://"))


def cache_path(url: str) -> Path:
    """Where a downloaded URL lives: settings.data_dir()/cache/<host>/<path>."""
    parsed = urlparse(url)
    return settings.data_dir() / "cache" / parsed.netloc / parsed.path.lstrip("/")


def download(url: str, *, progress: bool = True, chunk_bytes: int = 1 << 20) -> Path:
    """Fetch `url` once into the cache (with a progress bar) and return the local path.

    DuckDB's httpfs extension cannot be installed offline, so we download with requests.
    The file is written under a temporary name and renamed, so an interrupted download is
    never mistaken for a complete one.
    """
    import requests
    from tqdm import tqdm

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
