"""The job that spans stages: new raw rows -> dbt marts -> serving snapshot, in one run.

(Each raw job lives with its asset, in raw/.) One run instead of one per stage: every Dagster run
costs a process launch and a code-location load (~10 s on two cores), which is most of the time
between a batch landing and the dashboards showing it.
"""

import dagster as dg

from pipeline_assets.serving.snapshot import serving_snapshot
from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models

build_marts_job = dg.define_asset_job(
    "build_marts_job",
    selection=dg.AssetSelection.assets(dbt_daily_models, dbt_all_time_models, serving_snapshot),
    description=(
        "For one day (or a range of days): the daily dbt partitions (then the check that every "
        "Kafka offset has one outcome), the all-time marts that read them, then the serving "
        "snapshot the dashboards read."
    ),
    # A generous bound (run monitoring fails a run past it): a 10M-row build alone takes minutes.
    tags={"dagster/max_runtime": str(6 * 3600)},
)
