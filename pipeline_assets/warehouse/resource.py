"""The warehouse as a read-only Dagster resource: what the snapshot, the offsets check and the
forecasts read, on either engine."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster_duckdb import DuckDBResource

from pipeline_assets import settings
from pipeline_assets.spark import tables as spark_tables
from pipeline_assets.warehouse.lock import warehouse_writer


class WarehouseResource(DuckDBResource):
    """dbt's warehouse, read-only. A connection holds the warehouse's writer lock
    (warehouse/lock.py), so no process writes meanwhile (live mode included); for a `dbt build`
    from a shell, which takes no lock, DuckDBResource retries a locked file for about 100 s.
    Without a `database`, the warehouse is the engine's (REDSET_ENGINE), read when a connection
    opens, not when the code location loads, like every other setting: the DuckDB file
    settings.warehouse_path(), or on Spark an in-memory DuckDB with a view per table over its
    Parquet files (spark/tables.py), the same names in `main`."""

    database: str = ""
    connection_config: dict[str, Any] = {"access_mode": "READ_ONLY"}

    @property
    def path(self) -> Path:
        if self.database:
            return Path(self.database)
        return settings.spark_warehouse() if settings.engine() == "spark" else settings.warehouse_path()

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse_writer("a read-only warehouse connection", self.path):  # no writer meanwhile
            if self.database:
                with super().get_connection() as con:
                    yield con
            elif settings.engine() == "spark":
                with spark_tables.connect(settings.spark_warehouse(), settings.spark_schema()) as con:
                    yield con
            else:
                with DuckDBResource(database=str(self.path), connection_config=self.connection_config).get_connection() as con:
                    yield con


def warehouse_resource(path: Path | None = None) -> WarehouseResource:
    """The read-only warehouse resource: of DuckDB file `path`, or of the engine's warehouse when a
    connection opens."""
    return WarehouseResource(database=str(path) if path else "")
