"""A small serving folder built by the real pipeline, shared by the serving, dashboard and browser tests.

    generator -> raw-zone Parquet (landing-style rows) -> dbt (CLI) -> serving_snapshot (Dagster)

Kafka is left out on purpose: the raw dump has its own tests, and these tests are about what
happens after the raw zone. The folder is built once per pytest process (the first test that
asks) under a session temp dir; every test module reaches it through `build()`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from pipeline_assets import settings
from pipeline_assets.insights.forecast_asset import workload_forecasts
from pipeline_assets.raw import zone, zone_rows
from pipeline_assets.serving import publishes
from pipeline_assets.serving.snapshot import serving_snapshot
from pipeline_assets.settings import environment
from pipeline_assets.source import generator
from pipeline_assets.warehouse.resource import warehouse_resource

ROWS = 20_000
DAYS = 3
SEED = 11
START = date(2024, 3, 1)


@dataclass(frozen=True)
class Built:
    root: Path
    source: pa.Table = field(repr=False)  # the generated rows, as the generator made them
    raw_dir: Path
    warehouse: Path
    serving_dir: Path

    @property
    def snapshot(self) -> Path:
        """The current publish's folder (serving/publishes.py)."""
        return publishes.current_dir(self.serving_dir)

    def env(self) -> dict[str, str]:
        """The variables that point settings (and dbt) at this build."""
        return {
            "REDSET_DATA_DIR": str(self.root / "data"),
            "REDSET_RAW_DIR": str(self.raw_dir),
            "REDSET_WAREHOUSE": str(self.warehouse),
            "REDSET_SERVING_DIR": str(self.serving_dir),
        }


_built: Built | None = None


def build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    global _built
    if _built is None:
        root = tmp_path_factory.mktemp("serving-pipeline")
        built = Built(
            root=root,
            source=generator.generate(rows=ROWS, seed=SEED, start=START, days=DAYS),
            raw_dir=root / "data" / "raw",
            warehouse=root / "data" / "warehouse.duckdb",
            serving_dir=root / "data" / "serving",
        )
        write_raw_zone(built.source, built.raw_dir, "synthetic.parquet")
        run_dbt(built, "build")
        materialize_snapshot(built)
        _built = built
    return _built


def write_raw_zone(table: pa.Table, raw_dir: Path, source_file: str) -> None:
    """Rows as the landing ingest writes them: kafka_* NULL, source_file/source_row set."""
    n = table.num_rows
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    provenance = {
        "source_file": pa.array([source_file] * n, pa.string()),
        "source_row": pa.array(np.arange(n, dtype=np.int64)),
        "batch_id": pa.array(["serving-tests"] * n, pa.string()),
        "ingested_at": pa.array([now] * n, pa.timestamp("us")),
    }
    sha8 = hashlib.sha256(source_file.encode()).hexdigest()[:8]
    stem = Path(source_file).stem
    writer = zone.RawZoneWriter(raw_dir, lambda info: f"landing-{stem}-{sha8}-{info.seq}.parquet")
    writer.write(zone_rows.to_raw_table(table, provenance), group=f"landing-{stem}-{sha8}")
    writer.publish()


def dbt_command(built: Built, *args: str) -> list[str]:
    dbt = Path(sys.executable).with_name("dbt")
    project = settings.DBT_PROJECT_DIR
    # Own target and log folders: other tests may run dbt in the same project at the same time.
    return [
        str(dbt if dbt.exists() else shutil.which("dbt")),
        *args,
        "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(built.root / "dbt-target"), "--log-path", str(built.root / "dbt-logs"),
    ]  # fmt: skip


def run_dbt(built: Built, command: str = "build") -> subprocess.CompletedProcess:
    result = subprocess.run(
        dbt_command(built, command, "--quiet"),
        env={**os.environ, **built.env()},
        cwd=settings.DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"dbt {command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    return result


def materialize_snapshot(built: Built, serving: str | None = None) -> dg.MaterializeResult:
    """The serving_snapshot asset through Dagster, as a sensor-launched run would execute it (into
    `serving`, a folder or s3:// URL, instead of the build's serving folder when given)."""
    with environment({**built.env(), **({"REDSET_SERVING_DIR": serving} if serving else {})}):
        # The forecasts first: the snapshot serves their tables too.
        result = dg.materialize([workload_forecasts, serving_snapshot], resources={"warehouse": warehouse_resource()})
    assert result.success
    return result


_on_s3: dict[str, str] = {}


def served(built: Built, storage_url: str | None) -> publishes.Zone:
    """The build's serving zone on disk (storage_url None, the zone_storage fixture's [local]), or ([s3]) the
    same warehouse published by the serving_snapshot asset under storage_url on the session's S3 server:
    once per process, like the build (its objects outlive the test that published them)."""
    if storage_url is None:
        return publishes.zone(built.serving_dir)
    if "url" not in _on_s3:
        materialize_snapshot(built, f"{storage_url}/serving")
        _on_s3["url"] = f"{storage_url}/serving"
    return publishes.zone(_on_s3["url"])


def serving_at(tmp_path: Path, storage_url: str | None, name: str = "serving") -> str | Path:
    """A fresh serving zone for one test: a folder under tmp_path, or a prefix under storage_url ([s3])."""
    return tmp_path / name if storage_url is None else f"{storage_url}/{name}"


def listed(zone: publishes.Zone, *names: str) -> list[str]:
    """The sorted names under a zone's folder (or its root), on either storage."""
    try:
        return sorted(p.rsplit("/", 1)[-1] for p in zone.fs.ls(zone.path(*names), detail=False, refresh=True))
    except FileNotFoundError:
        return []
