"""Publishes the dbt marts as Parquet files for the dashboards: the `serving_snapshot` asset.

Dashboards never open the DuckDB file dbt writes: another process's lock makes that fail at
once. Instead, after each successful dbt build this asset opens the warehouse read-only (on
REDSET_ENGINE=spark: the tables' Parquet files, through an in-memory DuckDB; spark/tables.py),
exports every served mart to `<model>.parquet` in a new publish folder of the serving zone (a
folder, or s3:// whose publishes remote_publish.py uploads), adds `kpis.parquet` (the fleet KPI
cards, per deployment and day), `evidence.parquet` (the query rows behind each insight,
evidence.py) and `_published.json`, and only then switches the pointer to that folder
(publishes.py): a reader sees one whole publish,
never half a file nor a mix of two. The asset shares the Dagster pool `duckdb` with dbt, and
publishing holds the warehouse's writer lock (warehouse/lock.py), so it never reads while dbt or
live mode writes, and two publishers never switch at once.
"""

# No `from __future__ import annotations` here: Dagster inspects the asset's `context` annotation.
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipeline_assets import settings
from pipeline_assets.durable import fsync_path, remove_dead_temp_files, write_json_atomically
from pipeline_assets.serving import evidence, postgres, publishes, quarantine, remote_publish, source_freshness
from pipeline_assets.warehouse.lock import warehouse_writer
from pipeline_assets.warehouse.resource import WarehouseResource, warehouse_resource
from pipeline_assets.warehouse.served import SERVED_MODELS, served_assets

KPIS = "kpis"
MANIFEST = "_published.json"

# The KPI cards: per (deployment, arrival_date) sums of query_metrics, so a dashboard filter on
# dates and deployment is a cheap sum over a few hundred rows.
KPI_COLUMNS: tuple[str, ...] = (
    "queries",
    "successful",
    "aborted",
    "cached",
    "mbytes_scanned",
    "mbytes_spilled",
    "joins",
    "aggregations",
    "scans",
)
KPI_SQL = f"""
    SELECT deployment, arrival_date, {", ".join(f"sum({c}) AS {c}" for c in KPI_COLUMNS)}
    FROM main.query_metrics
    GROUP BY deployment, arrival_date
    ORDER BY deployment, arrival_date
"""

@dataclass
class Publication:
    """What one publish wrote."""

    published_at: str
    serving_dir: str | Path  # the serving zone: a folder, or its s3:// URL
    publish_id: str = ""  # its folder: serving_dir/publishes/<publish_id> (publishes.py)
    rows: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    quarantine: dict[str, int] = field(default_factory=dict)  # reason -> rows (serving/quarantine.py)
    evidence_rows: int = 0  # the cap per insight of evidence.parquet (serving/evidence.py)
    seconds: float = 0.0
    postgres_load: postgres.PostgresLoad | None = None  # with REDSET_SERVING_POSTGRES_URL (serving/postgres.py)

    def manifest(self, warehouse: Path) -> dict[str, object]:
        manifest: dict[str, object] = {
            "published_at": self.published_at,
            "publish_id": self.publish_id,
            "warehouse": str(warehouse),
            "tables": {name: {"file": f"{name}.parquet", "rows": n} for name, n in self.rows.items()},
            "missing": self.missing,
            "quarantine_by_reason": self.quarantine,
            "evidence_rows_per_insight": self.evidence_rows,
        }
        if self.postgres_load:
            manifest["postgres"] = self.postgres_load.manifest()
        return manifest


def read_manifest(serving: publishes.Serving) -> dict[str, object] | None:
    """The current publication's manifest, or None when nothing was published yet."""
    return publishes.current(serving).read_json(MANIFEST)


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
    return {r[0] for r in rows}


def _select_for_export(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """`query` wrapped so that HUGEINT columns (DuckDB's sum of integers) come out as BIGINT.

    Parquet has no 128-bit integer, so DuckDB would write those as DOUBLE; counts stay integers.
    `query` is built from SERVED_MODELS and KPI_SQL, never from user input.
    """
    columns = con.execute(f"DESCRIBE {query}").fetchall()
    exprs = [
        f'CAST("{name}" AS BIGINT) AS "{name}"' if dtype in ("HUGEINT", "UHUGEINT") else f'"{name}"'
        for name, dtype, *_ in columns
    ]
    return f"SELECT {', '.join(exprs)} FROM ({query}) AS q"


def _export(con: duckdb.DuckDBPyConnection, select_sql: str, target: Path) -> int:
    """COPY a query to `target` in the new publish's folder (no reader looks there yet); returns rows."""
    con.execute(f"COPY ({select_sql}) TO '{_sql_path(target)}' (FORMAT parquet, COMPRESSION zstd)")
    fsync_path(target)
    return int(con.execute("SELECT count(*) FROM read_parquet(?)", [str(target)]).fetchone()[0])


def _carry_over(previous: Path, folder: Path, names: list[str]) -> None:
    """The previous publish's files of tables this one did not export (models not built yet)."""
    for name in names:
        source = previous / f"{name}.parquet"
        if source.exists() and not (folder / source.name).exists():
            try:
                os.link(source, folder / source.name)  # its files never change: a hard link is a copy
            except OSError:
                shutil.copy2(source, folder / source.name)


def _sql_path(path: Path) -> str:
    # COPY ... TO takes no prepared parameter; the path is ours (settings), quotes escaped anyway.
    return str(path).replace("'", "''")


def publish(
    warehouse: Path | None = None,
    serving_dir: publishes.Serving | None = None,
    *,
    duckdb_resource: WarehouseResource | None = None,
) -> Publication:
    """Export the served marts and the KPIs from `warehouse` (or `duckdb_resource`'s database)
    into the serving zone `serving_dir` (a folder or an s3:// URL; settings' by default).

    Models not built yet are listed in `missing` and keep their previous file, if any; the
    dashboards show what exists. Publishing with no served model at all is an error.
    """
    duckdb_resource = duckdb_resource or warehouse_resource(warehouse)
    warehouse = duckdb_resource.path
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist yet: materialize the dbt models first")
    zone = publishes.zone(serving_dir or settings.zone_url("serving"))
    started = time.monotonic()
    pub = Publication(published_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), serving_dir=zone.location)
    with warehouse_writer("serving snapshot publish", warehouse):
        if zone.remote:
            _publish_remote(zone, pub, duckdb_resource)
        else:
            _publish_local(Path(zone.root), pub, duckdb_resource)
    pub.seconds = time.monotonic() - started
    return pub


def _publish_local(serving_dir: Path, pub: Publication, duckdb_resource: WarehouseResource) -> None:
    serving_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_temp_files(serving_dir)  # the pointer's, left by a publisher killed mid-write
    pub.publish_id, folder = publishes.new_folder(serving_dir)
    try:
        _publish_into(folder, pub, duckdb_resource)
        _carry_over(publishes.current_dir(serving_dir), folder, [*pub.missing, KPIS, evidence.EVIDENCE])
        # The manifest, then the pointer: once readers are pointed here, every file is in place.
        write_json_atomically(pub.manifest(duckdb_resource.path), folder / MANIFEST)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    publishes.switch(serving_dir, pub.publish_id)


def _publish_remote(zone: publishes.Zone, pub: Publication, duckdb_resource: WarehouseResource) -> None:
    """The files written in a local staging folder as on disk, then uploaded and switched to (remote_publish.py)."""
    pub.publish_id = publishes.new_id()
    folder = remote_publish.staging_folder(pub.publish_id)
    try:
        _publish_into(folder, pub, duckdb_resource)
        write_json_atomically(pub.manifest(duckdb_resource.path), folder / MANIFEST)
        remote_publish.switch(zone, pub.publish_id, folder, carry_over=[*pub.missing, KPIS, evidence.EVIDENCE])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _publish_into(folder: Path, pub: Publication, duckdb_resource: WarehouseResource) -> None:
    """Every served table of the warehouse into `folder`, the new publish's."""
    warehouse = duckdb_resource.path
    with duckdb_resource.get_connection() as con:
        existing = _existing_tables(con)
        pub.missing = [m for m in SERVED_MODELS if m not in existing]
        if len(pub.missing) == len(SERVED_MODELS):
            raise RuntimeError(
                f"none of the served marts {', '.join(SERVED_MODELS)} exists in {warehouse}: "
                "materialize the dbt models first"
            )
        for model in SERVED_MODELS:
            if model in existing:
                query = _select_for_export(con, f'SELECT * FROM main."{model}"')
                pub.rows[model] = _export(con, query, folder / f"{model}.parquet")
        if "quarantine_queries" in existing:
            pub.quarantine = quarantine.counts(con)
        if "query_metrics" in existing:
            pub.rows[KPIS] = _export(con, _select_for_export(con, KPI_SQL), folder / f"{KPIS}.parquet")
        pub.evidence_rows = settings.bound("evidence_rows")
        evidence_sql = evidence.evidence_sql(existing, pub.evidence_rows)
        if evidence_sql is not None:
            target = folder / f"{evidence.EVIDENCE}.parquet"
            pub.rows[evidence.EVIDENCE] = _export(con, _select_for_export(con, evidence_sql), target)
        # Still under the writer lock, so two publishers never load Postgres at once; a failure is logged
        # and recorded, and the Parquet files stay published (the source of truth).
        if url := postgres.url():
            files = {name: folder / f"{name}.parquet" for name in pub.rows}
            pub.postgres_load = postgres.load(files, pub.published_at, url)


# build_marts_job ends with a snapshot; this condition covers the other ways marts change (a
# manual materialisation, a backfill): publish once dbt has updated a served mart since the last
# snapshot, when no run that updates one is still going (such as a build_marts_job, which will
# publish anyway), one snapshot run at a time. Evaluated by the sensor
# `serving_snapshot_automation` (sensors.py). Not eager(): that waits for every daily partition
# to exist, and days without data never will.
PUBLISH_AFTER_DBT = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("publish after dbt")


@dg.asset(
    key="serving_snapshot",
    group_name="serving",
    pool="duckdb",
    deps=[dg.AssetKey(name) for name in served_assets()],
    kinds={"duckdb", "parquet"},
    automation_condition=PUBLISH_AFTER_DBT,
    description=(
        "Read-only Parquet exports of the dbt marts plus fleet KPIs and the evidence index (the query "
        "rows behind each insight), published whole into a new folder of the serving zone (on disk or S3), "
        "then one pointer switched to it. The dashboards read only these files."
    ),
)
def serving_snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    pub = publish(duckdb_resource=warehouse)
    if pub.missing:
        context.log.warning(f"marts not built yet, not published: {', '.join(pub.missing)}")
    if pub.postgres_load and pub.postgres_load.error:
        context.log.warning(pub.postgres_load.error)
    # Not imported at the top: the dashboards import this module, and this one brings dbt in.
    from pipeline_assets.serving.freshness_check import refresh

    metadata = publication_metadata(pub)
    freshness = refresh(pub.serving_dir, log=context.log)  # for the dashboards' status line
    if freshness is not None:
        context.log.info(source_freshness.status_text(freshness))
        metadata["raw_zone_freshness"] = freshness["status"]
    return dg.MaterializeResult(metadata=metadata)


def publication_metadata(pub: Publication) -> dict[str, Any]:
    """A publication as serving_snapshot's materialization metadata (also live mode's)."""
    return {
        "serving_dir": dg.MetadataValue.path(str(pub.serving_dir)),
        "published_at": pub.published_at,
        "tables": dg.MetadataValue.json(pub.rows),
        "missing": dg.MetadataValue.json(pub.missing),
        "query_metrics_rows": pub.rows.get("query_metrics", 0),
        "seconds": round(pub.seconds, 2),
        **({"postgres": dg.MetadataValue.json(pub.postgres_load.manifest())} if pub.postgres_load else {}),
    }


serving_job = dg.define_asset_job(
    "serving_snapshot_job",
    selection=[serving_snapshot],
    description="Publish the serving snapshot the dashboards read.",
    tags={"dagster/max_runtime": str(3600)},  # a generous bound, for run monitoring
)
