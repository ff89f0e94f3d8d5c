"""One warehouse file per pytest process (dbt_support.dbt_paths gives it to every test, emptied)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# DuckDB names the catalog after the file, and the manifest's relation names (used for row counts) say "warehouse".
WAREHOUSE_NAME = "warehouse.duckdb"


def worker_warehouse() -> Path:
    """This pytest process's warehouse file, the same path for every test, emptied (WAL, locks, spill
    too): dbt hashes the path into its profile, and a new profile parses the whole project again in
    a test's first build. A fixture whose warehouse outlives one test moves it out (`park`)."""
    folder = Path(tempfile.gettempdir()) / f"redset-test-warehouse-{os.getpid()}"
    if not folder.exists():
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder / WAREHOUSE_NAME
