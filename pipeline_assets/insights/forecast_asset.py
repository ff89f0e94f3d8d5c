"""The `workload_forecasts` asset: per instance, next week's hourly queries and execution hours.

Reads the hourly series from clean_queries (query_metrics has no execution-time sum), fits
forecast.py's models per instance and metric, and writes three warehouse tables: `workload_forecasts`
(the next 168 h with an 80 % band), `forecast_backtest` (MASE and sMAPE per model over the last
14 daily origins) and `forecast_history` (the backtest's forecasts: each of those past hours as
forecast from the daily origin before it, so load_surge can judge past hours). The hour holding the newest arrival is still filling, so series end before it.

On REDSET_ENGINE=spark it reads clean_queries from the Spark tables' Parquet files (through the
`warehouse` resource) and writes its tables as Parquet beside them (write_spark_tables).

Cadence: at most hourly, once clean_queries changed (its own automation sensor). A week-ahead
forecast does not need every batch, and its backtest costs seconds per instance.
"""

# No `from __future__ import annotations`: Dagster inspects the asset's `context` annotation.
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from pipeline_assets import settings
from pipeline_assets.runtime.priority import at_low_priority
from pipeline_assets.spark import tables as spark_tables
from pipeline_assets.warehouse.dbt_assets import POOL
from pipeline_assets.warehouse.lock import warehouse_writer
from pipeline_assets.warehouse.resource import WarehouseResource

# pandas and the models load inside the asset: every code server and run worker imports this
# module, and pandas alone costs seconds of a run's start on two busy cores.
if TYPE_CHECKING:
    import pandas as pd

HOURLY_SQL = """
    WITH q AS (SELECT * FROM main.clean_queries),
    newest AS (SELECT date_trunc('hour', max(arrival_timestamp)) AS filling FROM q)
    SELECT deployment, instance_id, date_trunc('hour', arrival_timestamp) AS hour,
           count(*) AS queries, coalesce(sum(execution_duration_ms), 0) / 3600000.0 AS exec_hours
    FROM q, newest
    WHERE arrival_timestamp < newest.filling
    GROUP BY ALL
"""
METRICS = ("queries", "exec_hours")
KEYS = ["deployment", "instance_id"]


def forecast_tables(hourly: "pd.DataFrame") -> tuple["pd.DataFrame", "pd.DataFrame", "pd.DataFrame"]:
    """(workload_forecasts, forecast_backtest, forecast_history) from (deployment, instance_id, hour,
    queries, exec_hours)."""
    import pandas as pd

    from pipeline_assets.insights import forecast as fc

    forecasts, backtests, histories = [], [], []
    series_id = hourly["deployment"] + "/" + hourly["instance_id"].astype(str)
    for metric in METRICS:
        frame = pd.DataFrame({"series_id": series_id, "hour": hourly["hour"], "value": hourly[metric]})
        forecasts.append(fc.forecast(frame).assign(metric=metric))
        backtest, history = fc.backtest_with_history(frame)
        backtests.append(backtest.assign(metric=metric))
        histories.append(history.assign(metric=metric))
    out = []
    for table, columns in (
        (pd.concat(forecasts), ["hour", "metric", "model", "forecast", "lower", "upper"]),
        (pd.concat(backtests), ["metric", "model", "mase", "smape", "origins"]),
        (pd.concat(histories), ["hour", "metric", "model", "origin", "forecast", "lower", "upper"]),
    ):
        # Split by hand: expand=True yields no columns on an empty table (series under a week: no history).
        keys = table["series_id"].astype(str).str.split("/", n=1)
        table = table.assign(deployment=keys.str[0], instance_id=keys.str[1].astype("int64"))
        out.append(table[KEYS + columns].reset_index(drop=True))
    return out[0], out[1], out[2]


# The three tables, each a SELECT over the frame of the same name (in DuckDB's replacement scan).
TABLE_SQL = {
    "workload_forecasts": "SELECT deployment, CAST(instance_id AS BIGINT) AS instance_id, "
    "CAST(hour AS TIMESTAMP) AS hour, metric, model, forecast, lower, upper FROM forecasts",
    "forecast_backtest": "SELECT deployment, CAST(instance_id AS BIGINT) AS instance_id, "
    "metric, model, mase, smape, CAST(origins AS INTEGER) AS origins FROM backtests",
    "forecast_history": "SELECT deployment, CAST(instance_id AS BIGINT) AS instance_id, "
    "CAST(hour AS TIMESTAMP) AS hour, metric, model, CAST(origin AS TIMESTAMP) AS origin, "
    "CAST(forecast AS DOUBLE) AS forecast, CAST(lower AS DOUBLE) AS lower, CAST(upper AS DOUBLE) AS upper FROM history",
}


def write_tables(path, forecasts: "pd.DataFrame", backtests: "pd.DataFrame", history: "pd.DataFrame") -> None:
    """Replace the three tables in one transaction, the warehouse open for writing only meanwhile."""
    with warehouse_writer("workload_forecasts: writing its tables", Path(path)), duckdb.connect(str(path)) as con:
        con.execute("BEGIN")
        for name, select_sql in TABLE_SQL.items():
            con.execute(f"CREATE OR REPLACE TABLE main.{name} AS {select_sql}")
        con.execute("COMMIT")


def write_spark_tables(forecasts: "pd.DataFrame", backtests: "pd.DataFrame", history: "pd.DataFrame") -> None:
    """REDSET_ENGINE=spark: the three tables as Parquet folders beside dbt's (<warehouse>/<schema>.db/),
    where the serving snapshot reads them. Written without Spark, so not in its metastore, and one
    after another, not in one transaction."""
    frames = {"forecasts": forecasts, "backtests": backtests, "history": history}
    for name, select_sql in TABLE_SQL.items():
        spark_tables.write_table(settings.spark_warehouse(), settings.spark_schema(), name, select_sql, frames)


@dg.asset(
    deps=[dg.AssetKey("clean_queries")],
    pool=POOL,  # DuckDB: one writer process; never beside dbt or the snapshot
    group_name="marts",
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
    description="Next 168 h of hourly queries and execution hours per instance (every model of "
    "forecast.MODELS with an 80 % band; the served one is forecast.DEFAULT_MODEL) in `workload_forecasts`; their backtest (MASE m=168, "
    "sMAPE, last 14 daily origins, 24 h ahead) in `forecast_backtest`, its out-of-sample forecasts "
    "per past hour in `forecast_history`.",
)
def workload_forecasts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from pipeline_assets.insights import forecast as fc

    started = time.monotonic()
    # The writer lock is held to read and to write, not while fitting (seconds per instance).
    with warehouse_writer("workload_forecasts: reading clean_queries", warehouse.path, context.log):
        with warehouse.get_connection() as con:
            hourly = con.execute(HOURLY_SQL).df()
    # Background work: the fitting yields the CPU to live mode's cycles and the builds (#28).
    forecasts, backtests, history = at_low_priority(forecast_tables, hourly)
    if settings.engine() == "spark":
        write_spark_tables(forecasts, backtests, history)
    else:
        write_tables(warehouse.path, forecasts, backtests, history)
    medians = {m: backtests[backtests.metric == m].groupby("model")["mase"].median() for m in METRICS}
    for metric in METRICS:  # the table `redset forecast` prints, from the same code
        part = backtests[backtests.metric == metric].assign(series_id=lambda b: b.deployment + "/" + b.instance_id.astype(str))
        context.log.info(f"{metric} backtest (served: {fc.DEFAULT_MODEL}):\n{fc.summary(part).round(3).to_string(index=False)}")
    return dg.MaterializeResult(
        metadata={
            **{f"median_mase_{m}": dg.MetadataValue.json(v.round(4).to_dict()) for m, v in medians.items()},
            **{f"winner_{m}": (v.idxmin() if v.notna().any() else "none") for m, v in medians.items()},
            "served_model": fc.DEFAULT_MODEL,
            "instances": dg.MetadataValue.int(int(hourly[KEYS].drop_duplicates().shape[0])),
            "seconds": dg.MetadataValue.float(round(time.monotonic() - started, 1)),
        }
    )


# Evaluates the hourly condition above (sensors.py's sensors each target their own assets).
workload_forecasts_automation = dg.AutomationConditionSensorDefinition(
    name="workload_forecasts_automation",
    target=dg.AssetSelection.assets(workload_forecasts),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
)
