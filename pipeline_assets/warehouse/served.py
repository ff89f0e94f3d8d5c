"""The marts other stages read (the serving snapshot publishes them) and their freshness policy.

Each carries `FreshnessPolicy.time_window(REDSET_FRESHNESS_MINUTES)`: Dagster marks one stale in
the UI once its last materialization is older than the window (monitoring/freshness.py holds the
project's narrower stale rule and its alert).
"""

from datetime import timedelta

import dagster as dg

from pipeline_assets import settings

# dbt marts the dashboards read. clean_queries and quarantine_queries are row-level tables the
# dashboards do not need, so they stay in the warehouse.
SERVED_MODELS: tuple[str, ...] = (
    "query_metrics",
    "compile_metrics",
    "leaderboard",
    "flattened_table_access",
    "table_ingest_gaps",
    "table_workload",
    "stress_index",
    "weekly_workload_drift",
    "tail_concentration",
    "workload_forecasts",
    "forecast_backtest",
    "workload_anomalies",
    "daily_query_repetition",
    "fleet_query_repetition",
    "cache_opportunity_leaderboard",
)


def window() -> timedelta:
    return timedelta(minutes=settings.freshness_minutes())


def served_policy(cadence: timedelta = timedelta(0)) -> dg.FreshnessPolicy:
    """Fail once the last materialization is older than the window (plus an asset's own cadence)."""
    return dg.FreshnessPolicy.time_window(fail_window=window() + cadence)
