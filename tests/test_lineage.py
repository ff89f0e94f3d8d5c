"""The asset graph starts at the source file: source -> Kafka topic -> raw_queries -> dbt -> snapshot."""

from __future__ import annotations

import dagster as dg

from pipeline_assets.orchestration.definitions import defs


def _parents(graph: dg.AssetGraph, key: str) -> set[str]:
    return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}


def test_source_and_topic_are_external_assets_upstream_of_raw_queries() -> None:
    graph = defs.resolve_asset_graph()
    assert _parents(graph, "raw_queries") == {"redset_kafka_topic"}
    assert _parents(graph, "redset_kafka_topic") == {"redset_source"}
    assert _parents(graph, "redset_source") == set()
    for key, kind in (("redset_source", "parquet"), ("redset_kafka_topic", "kafka")):
        node = graph.get(dg.AssetKey(key))
        assert not node.is_materializable, f"{key} is produced outside Dagster"
        assert kind in node.kinds
        assert node.group_name == "source"


def test_the_snapshot_is_downstream_of_the_source() -> None:
    graph = defs.resolve_asset_graph()
    seen, todo = set(), [dg.AssetKey("redset_source")]
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(graph.get(key).child_keys)
    assert {dg.AssetKey("raw_queries"), dg.AssetKey("query_metrics"), dg.AssetKey("serving_snapshot")} <= seen


def test_the_only_external_assets_are_the_source_the_topic_and_the_dashboards() -> None:
    """The dashboards are dbt exposures; every other asset is defined here: an input named but defined nowhere shows in Dagster's UI
    as an external asset in the `default` group (serving_snapshot once named the forecast table
    `forecast_backtest` instead of `workload_forecasts`, the asset that writes it)."""
    graph = defs.resolve_asset_graph()
    external = {k.to_user_string() for k in graph.get_all_asset_keys() if not graph.get(k).is_materializable}
    external -= {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_observable}
    assert external == {"redset_source", "redset_kafka_topic", "aggregate_dashboard", "expert_dashboard"}
    assert "default" not in {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert "workload_forecasts" in _parents(graph, "serving_snapshot")
