"""Assembles the code location: assets, checks, sensors, schedules and resources. Nothing else."""

import dagster as dg

from pipeline_assets.insights.forecast_asset import workload_forecasts, workload_forecasts_automation
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.job import keep_live_mode_running, live_mode_job
from pipeline_assets.monitoring.anomaly_alerts import alert_on_new_anomalies
from pipeline_assets.monitoring.freshness import alert_on_stale_snapshot, freshness_checks
from pipeline_assets.orchestration.jobs import build_marts_job
from pipeline_assets.orchestration.pools import single_writer_executor
from pipeline_assets.orchestration.retention import prune_old_runs
from pipeline_assets.orchestration.schedules import daily_marts_schedule
from pipeline_assets.orchestration.sensors import (
    alert_on_run_failure,
    all_time_marts_automation,
    build_marts_on_new_raw_batches,
    kafka_lag_sensor,
    landing_file_sensor,
    serving_snapshot_automation,
)
from pipeline_assets.orchestration.upstream import redset_kafka_topic, redset_source
from pipeline_assets.raw.dump.asset import dump_kafka_job, raw_queries
from pipeline_assets.raw.landing.asset import ingest_landing_file_job, landing_queries
from pipeline_assets.serving.snapshot import serving_job, serving_snapshot
from pipeline_assets.warehouse import dbt_assets as dbt_stage
from pipeline_assets.warehouse.checks import raw_offsets_contiguous, raw_rows_match_offsets
from pipeline_assets.warehouse.exposures import DASHBOARD_ASSETS
from pipeline_assets.warehouse.offset_outcomes import offsets_have_one_outcome
from pipeline_assets.warehouse.resource import warehouse_resource

# In the pipeline's order: source -> topic -> raw -> dbt -> serving.
ASSETS = [
    redset_source,
    redset_kafka_topic,
    raw_queries,
    landing_queries,
    dbt_stage.dbt_daily_models,
    dbt_stage.dbt_all_time_models,
    serving_snapshot,
    workload_forecasts,
]
FRESHNESS_CHECKS, freshness_checks_sensor = freshness_checks([key for asset in ASSETS[2:] for key in asset.keys])

defs = dg.Definitions(
    assets=[*ASSETS, *DASHBOARD_ASSETS],  # the dashboards: external, never materialized
    asset_checks=[raw_offsets_contiguous, raw_rows_match_offsets, offsets_have_one_outcome, *FRESHNESS_CHECKS],
    jobs=[dump_kafka_job, ingest_landing_file_job, build_marts_job, serving_job, live_mode_job],
    sensors=[
        kafka_lag_sensor,
        landing_file_sensor,
        build_marts_on_new_raw_batches,
        all_time_marts_automation,
        serving_snapshot_automation,
        alert_on_run_failure,
        workload_forecasts_automation,
        alert_on_new_anomalies,
        alert_on_stale_snapshot,
        freshness_checks_sensor,
        keep_live_mode_running,
        prune_old_runs,
    ],
    schedules=[daily_marts_schedule],
    resources={
        "kafka": KafkaResource.from_env(),
        "dbt": dbt_stage.dbt_resource,
        "warehouse": warehouse_resource(),
    },
    # Steps run one after another in the run's own process, and the DuckDB writers of different
    # runs take turns however the instance is configured (pools.py).
    executor=single_writer_executor,
)
