"""The dashboards as dbt exposures (in the manifest, hence the dbt docs) and as Dagster assets."""

from __future__ import annotations

import json

import dagster as dg

from pipeline_assets.orchestration.definitions import defs
from pipeline_assets.warehouse.dbt_assets import dbt_project

# What each page and its insight panels read from the snapshot (views/*.py); workload_forecasts
# is the source standing for the Python asset that writes workload_forecasts and forecast_backtest.
AGGREGATE = {
    "model.redset.query_metrics",
    "model.redset.leaderboard",
    "model.redset.compile_metrics",
    "model.redset.weekly_workload_drift",
    "model.redset.tail_concentration",
    "model.redset.workload_anomalies",
    "model.redset.daily_query_repetition",
    "model.redset.cache_opportunity_leaderboard",
    "source.redset.insights.workload_forecasts",
}
EXPERT = {
    "model.redset.query_metrics",
    "model.redset.stress_index",
    "model.redset.table_workload",
    "model.redset.table_ingest_gaps",
    "model.redset.flattened_table_access",
    "model.redset.weekly_workload_drift",
    "model.redset.tail_concentration",
    "model.redset.workload_anomalies",
    "model.redset.daily_query_repetition",
    "source.redset.insights.workload_forecasts",
}


def test_the_manifest_has_both_dashboards_with_what_they_read() -> None:
    exposures = json.loads(dbt_project.manifest_path.read_text())["exposures"]
    assert set(exposures) == {"exposure.redset.aggregate_dashboard", "exposure.redset.expert_dashboard"}
    for name, reads, page in (("aggregate_dashboard", AGGREGATE, "aggregate"), ("expert_dashboard", EXPERT, "expert")):
        exposure = exposures[f"exposure.redset.{name}"]
        assert set(exposure["depends_on"]["nodes"]) == reads
        assert exposure["type"] == "dashboard"
        assert exposure["url"] == f"http://127.0.0.1:8501/{page}"
        assert exposure["owner"]["name"] and exposure["description"]


def test_the_dashboards_are_dagster_assets_downstream_of_the_served_models_and_the_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    for name, reads in (("aggregate_dashboard", AGGREGATE), ("expert_dashboard", EXPERT)):
        node = graph.get(dg.AssetKey(name))
        expected = {dg.AssetKey(unique_id.split(".")[-1]) for unique_id in reads} | {dg.AssetKey("serving_snapshot")}
        assert node.parent_keys == expected
        assert node.group_name == "dashboards"
        assert not node.is_materializable  # external: nothing builds a dashboard
