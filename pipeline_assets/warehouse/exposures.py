"""The dbt exposures (dbt_project/models/exposures/: the two dashboards) as Dagster assets.

dagster-dbt makes assets of models, seeds and snapshots only. Each exposure becomes an AssetSpec
here, keyed and described by the project's translator (translator.py: its bare name, group
`dashboards`), downstream of the dbt nodes it depends on and of `serving_snapshot`, whose files the
dashboards actually read. Nothing materializes them: they close the lineage at the readers.
"""

import json

import dagster as dg

from pipeline_assets.warehouse.dbt_assets import dbt_project
from pipeline_assets.warehouse.translator import translator

SNAPSHOT = dg.AssetKey("serving_snapshot")


def exposure_specs() -> list[dg.AssetSpec]:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return [
        translator.get_asset_spec(manifest, unique_id, dbt_project).merge_attributes(deps=[SNAPSHOT])
        for unique_id in sorted(manifest["exposures"])
    ]


DASHBOARD_ASSETS = exposure_specs()
