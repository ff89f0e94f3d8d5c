"""Runs `dbt source freshness` of the raw zone and keeps its result for the dashboards
(source_freshness.py says what the result means; the thresholds are the source's in
dbt_project/models/staging/_sources.yml). One dbt process, a few seconds, per publish:
REDSET_RAW_FRESHNESS_CHECK=0 skips it (the tests' default, bar the freshness tests). Not on
REDSET_ENGINE=spark, whose dbt would start a SparkSession for it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pipeline_assets import settings
from pipeline_assets.serving.publishes import Serving
from pipeline_assets.serving.source_freshness import summarize, write_state
from pipeline_assets.warehouse import parse_state
from pipeline_assets.warehouse.dbt_assets import dbt_env, dbt_resource, dbt_target
from pipeline_assets.warehouse.lock import warehouse_writer

SOURCE = "source:raw_zone.raw_queries"
SWITCH = "REDSET_RAW_FRESHNESS_CHECK"


def refresh(serving_dir: Serving | None = None, log: Any = None) -> dict[str, Any] | None:
    """`dbt source freshness` of the raw zone now, its state written for the dashboards and returned
    (None, and nothing written, when switched off)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    if settings.engine() == "spark":
        state = summarize(None, "not checked on REDSET_ENGINE=spark")
        write_state(state, serving_dir)
        return state
    (settings.DBT_PROJECT_DIR / "target").mkdir(exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="freshness-", dir=settings.DBT_PROJECT_DIR / "target"))
    try:
        with warehouse_writer("dbt source freshness", log=log), settings.environment(dbt_env(None)):
            with parse_state.around(target, dbt_target()):
                invocation = dbt_resource.cli(
                    ["source", "freshness", "--select", SOURCE, "--target", dbt_target()],
                    target_path=target, raise_on_error=False,
                )  # fmt: skip
                invocation.wait()
        produced = target / "sources.json"
        sources = json.loads(produced.read_text()) if produced.exists() else None
        state = summarize(sources, None if sources else invocation.get_error() and str(invocation.get_error()))
    except Exception as exc:  # never stops a publish; says why instead
        state = summarize(None, f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(target, ignore_errors=True)
    write_state(state, serving_dir)
    return state
