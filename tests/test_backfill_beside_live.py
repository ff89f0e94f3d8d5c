"""A backfill requested while live mode runs completes without stopping it by hand (#13.2).

A second process cycles the warehouse's writer lock the way live mode does (take it, write to the
warehouse, release it, take it again at once), while a partition-range run of the daily dbt assets
(two days, one dbt invocation) runs in this process. The run gets the lock between two cycles,
builds both days, and the cycling process keeps writing afterwards. Real DuckDB, real dbt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from dbt_support import dbt_paths, kafka_rows, materialize_dbt, query, write_raw_file
from pipeline_assets import schema
from pipeline_assets.source import generator
from pipeline_assets.warehouse_lock import warehouse_writer

ROOT = Path(__file__).resolve().parents[1]

# Each cycle: the lock, a row into the warehouse, a moment's hold, release; again at once.
LIVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import duckdb
    from pipeline_assets.warehouse_lock import warehouse_writer

    warehouse, cycles = Path(sys.argv[1]), Path(sys.argv[2])
    i = 0
    while True:
        with warehouse_writer(f"live mode cycle {i}", warehouse):
            with duckdb.connect(str(warehouse)) as con:
                con.execute("CREATE TABLE IF NOT EXISTS live_cycles (cycle INTEGER)")
                con.execute("INSERT INTO live_cycles VALUES (?)", [i])
                time.sleep(0.2)
            with cycles.open("a") as out:
                out.write(f"{i}\\n")
        i += 1
    """
)


def _cycles(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_for_cycles(path: Path, n: int, live: subprocess.Popen) -> None:
    for _ in range(1200):  # the test's patience, not an assert on time
        if _cycles(path) >= n:
            return
        assert live.poll() is None, f"the live process died (exit {live.returncode}): {live.stderr.read().decode()}"
        threading.Event().wait(0.05)
    raise AssertionError(f"the live process did not reach {n} cycles")


@pytest.mark.slow
def test_partition_range_backfill_completes_while_live_mode_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pipeline_assets.dbt import dbt_daily_models

    paths = dbt_paths(monkeypatch, tmp_path)
    rows = generator.generate(rows=600, seed=3, deployment="both", start=date(2024, 3, 1), days=2)
    rows = rows.select(list(schema.COLUMN_NAMES)).to_pylist()
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", datetime(2024, 3, 3)), "redset.queries-p0-o0.parquet")
    per_day = {d: sum(r["arrival_timestamp"].date() == d for r in rows) for d in (date(2024, 3, 1), date(2024, 3, 2))}
    assert all(n > 100 for n in per_day.values())

    cycles = tmp_path / "cycles.txt"
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE, str(paths.warehouse), str(cycles)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_cycles(cycles, 3, live)
        result = materialize_dbt([dbt_daily_models], partition_range=("2024-03-01", "2024-03-02"))
        assert result.success
        assert {e.partition for e in result.get_asset_materialization_events()} == {"2024-03-01", "2024-03-02"}
        after_backfill = _cycles(cycles)
        _wait_for_cycles(cycles, after_backfill + 3, live)  # live mode goes on
    finally:
        live.kill()
        live.wait()

    built = dict(query(paths.warehouse, "SELECT arrival_date, count(*) FROM clean_queries GROUP BY ALL"))
    quarantined = dict(query(paths.warehouse, "SELECT arrival_date, count(*) FROM quarantine_queries GROUP BY ALL"))
    assert {d: built.get(d, 0) + quarantined.get(d, 0) for d in per_day} == per_day
    # Every cycle the live process counted wrote its row: none failed on a locked file.
    with warehouse_writer("test: read the live rows", paths.warehouse), duckdb.connect(str(paths.warehouse)) as con:
        written = con.execute("SELECT count(*), count(DISTINCT cycle) FROM live_cycles").fetchone()
    assert written[0] == written[1] >= after_backfill + 3
