"""engine_compare.contract_differences on the real manifest (pure: test_spark_engine.py gives it
Spark's tables; here they are made up from the contracts, then changed)."""

from __future__ import annotations

import json

from engine_compare import SPARK_TYPES, contract_differences

from pipeline_assets.warehouse.dbt_assets import dbt_project
from pipeline_assets.warehouse.served import SERVED_MODELS


def test_contract_differences_name_each_served_models_column_that_differs() -> None:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    spark = {
        name: {column: SPARK_TYPES[c["data_type"]] for column, c in reversed(models[name]["columns"].items())}
        for name in SERVED_MODELS
        if name in models  # the two forecast tables are Python assets: no contract
    }  # fmt: skip
    assert len(spark) == 13
    assert contract_differences(manifest, spark) == []  # column order does not count

    spark["leaderboard"]["rank"] = "bigint"
    del spark["leaderboard"]["user_id"]
    spark["leaderboard"]["extra"] = "string"
    del spark["query_metrics"]
    assert sorted(contract_differences(manifest, spark)) == [
        "leaderboard.extra: contract None, Spark string",
        "leaderboard.rank: contract int, Spark bigint",
        "leaderboard.user_id: contract bigint, Spark None",
        "query_metrics: no Spark table",
    ]
