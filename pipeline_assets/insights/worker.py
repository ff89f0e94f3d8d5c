"""A low-priority background forecast worker, outside the live cycle (`redset demo` starts it).

    python -m pipeline_assets.insights.worker [--interval 60]

Every `interval` seconds, once the warehouse's clean_queries spans at least two weeks (the
backtest's history) and has a newer complete hour than the last forecast it made, it runs the
workload_forecasts asset's own steps: read the hourly series, fit (at nice 19, without any lock),
write the three tables (under the warehouse's writer lock for the read and the write only, as the
asset does). No live-cycle marker waits for it; the next serving snapshot carries the tables to the
dashboards. DuckDB warehouses only (on REDSET_ENGINE=spark the hourly asset serves).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import duckdb

from pipeline_assets import settings
from pipeline_assets.insights.forecast_asset import HOURLY_SQL, forecast_tables, write_tables
from pipeline_assets.warehouse.lock import warehouse_writer

MIN_SPAN_HOURS = 14 * 24
SPAN_SQL = "SELECT date_diff('hour', min(arrival_timestamp), max(arrival_timestamp)), max(date_trunc('hour', arrival_timestamp)) FROM main.clean_queries"
_log = logging.getLogger("redset.forecast_worker")


def run_once(warehouse: Path, last: object = None) -> object:
    """One pass: forecast when due; returns the newest hour forecast so far (`last` when skipped)."""
    if not warehouse.exists():
        return last
    with warehouse_writer("forecast worker: reading clean_queries", warehouse, _log):
        with duckdb.connect(str(warehouse)) as con:
            try:
                span, newest = con.execute(SPAN_SQL).fetchone()
            except duckdb.CatalogException:  # no clean_queries yet
                return last
            if span is None or span < MIN_SPAN_HOURS or newest == last:
                return last
            hourly = con.execute(HOURLY_SQL).df()
    started = time.monotonic()
    forecasts, backtests, history = forecast_tables(hourly)
    write_tables(warehouse, forecasts, backtests, history)
    _log.warning("forecasts written up to %s for %d series in %.1fs", newest, hourly[["deployment", "instance_id"]].drop_duplicates().shape[0], time.monotonic() - started)
    return newest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between passes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    os.nice(19)  # below dbt, the consumers and the snapshot
    last = None
    while True:
        try:
            last = run_once(settings.warehouse_path(), last)
        except duckdb.Error as error:  # e.g. a table being replaced mid-read: try again next pass
            _log.warning("forecast pass skipped: %s", error)
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
