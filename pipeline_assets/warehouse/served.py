"""The marts other stages read (the serving snapshot publishes them) and their freshness window.

Each, and serving_snapshot, has a freshness check (monitoring/freshness.py): it fails once the
asset's data time, its last build or the last observation that it holds everything Kafka has,
is older than REDSET_FRESHNESS_MINUTES (plus an asset's own cadence, `CADENCES`).
"""

from datetime import timedelta

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

# Served tables written by an asset of another name (the forecast asset writes three tables).
WRITTEN_BY: dict[str, str] = {"forecast_backtest": "workload_forecasts"}


def served_assets() -> list[str]:
    """The assets that write the served tables, each once, in SERVED_MODELS' order."""
    return list(dict.fromkeys(WRITTEN_BY.get(name, name) for name in SERVED_MODELS))


def window() -> timedelta:
    return timedelta(minutes=settings.freshness_minutes())


# Assets rebuilt on their own clock: between two builds they owe nothing (the forecasts are hourly).
CADENCES: dict[str, timedelta] = {"workload_forecasts": timedelta(hours=1)}


def watched_window(name: str) -> timedelta:
    """How old an asset's data time may be before its freshness check fails."""
    return window() + CADENCES.get(name, timedelta(0))
