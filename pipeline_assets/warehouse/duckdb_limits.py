"""DuckDB's memory, threads and spill space for the dbt build, resolved once per build.

The values go to dbt as REDSET_DUCKDB_* environment variables, which the dbt-duckdb profile
(dbt_project/profiles.yml, `settings:`) turns into DuckDB settings. With max_temp_directory_size
set, DuckDB stops a query with an error when its spill would outgrow the cap, instead of filling
the disk; check_temp_space() refuses to start a build that has no room for that cap at all.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from pipeline_assets import settings

# Disk that a build always leaves free beside the spill: the warehouse grows during the build, and
# a full disk breaks every other writer too (raw dump, Kafka, Dagster's storage).
MIN_FREE_BYTES = 1 << 30
# With no cap set, DuckDB may spill into this share of the disk free at the start of the build.
DEFAULT_TEMP_SHARE = 0.5

_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


class TempSpaceError(RuntimeError):
    """The build cannot have the spill space it is configured for."""


def parse_size(text: str, name: str = "REDSET_DUCKDB_MAX_TEMP") -> int:
    """Bytes of a DuckDB size ('40GB', '1.5 GiB', '500MB', '1073741824 bytes')."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{name} must be a size like '40GB' or '512MiB', got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def free_bytes(folder: Path) -> int:
    """Free disk at `folder`, or at its nearest existing parent (DuckDB creates the folder)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    raise FileNotFoundError(folder)


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def max_temp_bytes(free: int) -> int:
    """The spill cap: REDSET_DUCKDB_MAX_TEMP, else DEFAULT_TEMP_SHARE of the free disk in whole
    GiB. Whole GiB keep dbt's profile the same from one build to the next (free bytes change
    all the time), so dbt keeps its partial parse instead of parsing the project again."""
    configured = settings.duckdb_max_temp()
    if configured:
        return parse_size(configured)
    share = int(free * DEFAULT_TEMP_SHARE)
    return share - share % 2**30 if share >= 2**30 else share


def check_temp_space() -> int:
    """The spill cap in bytes, after checking the disk at the temp folder has room for it plus
    MIN_FREE_BYTES; else a TempSpaceError naming the folder, the free bytes and the settings."""
    folder = settings.duckdb_temp_dir()
    free = free_bytes(folder)
    cap = max_temp_bytes(free)
    if cap + MIN_FREE_BYTES > free:
        raise TempSpaceError(
            f"DuckDB's spill folder {folder} has {free:,} bytes ({gib(free)}) free, but the build may spill up to "
            f"{cap:,} bytes ({gib(cap)}, REDSET_DUCKDB_MAX_TEMP{'' if settings.duckdb_max_temp() else ' unset: half the free disk'}) "
            f"and keeps {gib(MIN_FREE_BYTES)} free for the warehouse. Free disk there, point REDSET_DUCKDB_TEMP_DIR "
            f"at a larger disk, or lower REDSET_DUCKDB_MAX_TEMP."
        )
    return cap


def clear_stale_spill(log=None) -> int:
    """Remove the spill files a killed DuckDB left in the warehouse's temp folder (DuckDB deletes
    its own only when it exits cleanly; a killed 50M build left 9.7 GB, which then shrank the next
    build's cap). Call only while holding the warehouse's writer lock: every process that opens
    the warehouse holds it, so no spill file there is in use. A folder named by
    REDSET_DUCKDB_TEMP_DIR may be shared with other DuckDBs, and is left alone. Returns the bytes freed."""
    if os.environ.get("REDSET_DUCKDB_TEMP_DIR", "").strip():
        return 0
    folder, freed = settings.duckdb_temp_dir(), 0
    for file in folder.glob("duckdb_temp_*") if folder.is_dir() else ():
        try:
            size = file.stat().st_size
            file.unlink()
        except FileNotFoundError:
            continue
        freed += size
    if freed and log is not None:
        log.warning(f"removed {gib(freed)} of spill files a killed DuckDB left in {folder}")
    return freed


def dbt_env(max_temp: int) -> dict[str, str]:
    """The REDSET_DUCKDB_* variables the profile reads, every one resolved (no hand-run fallback)."""
    return {
        "REDSET_DUCKDB_THREADS": str(settings.duckdb_threads()),
        "REDSET_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit(),
        "REDSET_DUCKDB_MAX_TEMP": f"{max_temp} bytes",
        "REDSET_DUCKDB_TEMP_DIR": str(settings.duckdb_temp_dir()),
    }


def explain_temp_cap(error: Exception, cap: int) -> str | None:
    """A readable note when DuckDB stopped at its spill cap (its message names the setting)."""
    if "max_temp_directory_size" not in str(error):
        return None
    return (
        f"DuckDB's spill reached its cap of {cap:,} bytes ({gib(cap)}, REDSET_DUCKDB_MAX_TEMP) "
        f"in {settings.duckdb_temp_dir()}: the build stopped before filling the disk. Raise REDSET_DUCKDB_MAX_TEMP "
        f"if the disk has room, raise REDSET_DUCKDB_MEMORY_LIMIT, lower REDSET_DUCKDB_THREADS, or lower REDSET_DBT_WINDOW_ROWS (fewer days per dbt run)."
    )
