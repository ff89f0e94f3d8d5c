"""Forecasts on both pages: the instance's next week with its band and backtest (expert), and which
model wins where (aggregate). Reads workload_forecasts and forecast_backtest (forecast_asset.py)."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pipeline_assets.serving.dashboard import ui

METRIC_LABELS = {"queries": "queries per hour", "exec_hours": "execution hours per hour"}


def render_expert(data, filters, instance) -> None:
    st.header("Forecast: next 168 hours")
    params = instance.params()
    where = "deployment = $deployment AND instance_id = $instance_id"
    recent = data.query(
        f"""SELECT hour, queries FROM query_metrics WHERE {where}
            AND hour > (SELECT max(hour) FROM query_metrics WHERE {where}) - INTERVAL 14 DAY ORDER BY hour""",
        params,
        needs=("query_metrics",),
    )
    ahead = data.query(
        f"SELECT hour, model, forecast, lower, upper FROM workload_forecasts WHERE {where} AND metric = 'queries' ORDER BY model, hour",
        params,
        needs=("workload_forecasts",),
    )
    if ahead.empty:
        ui.no_data("forecasts")
        return
    fig = go.Figure()
    if not recent.empty:
        fig.add_scatter(x=recent["hour"], y=recent["queries"], name="last 14 days", line=dict(color="gray"))
    for model, part in ahead.groupby("model"):
        fig.add_scatter(x=part["hour"], y=part["upper"], line=dict(width=0), showlegend=False, name=f"{model} upper")
        fig.add_scatter(x=part["hour"], y=part["lower"], fill="tonexty", line=dict(width=0), name=f"{model} 80 % band")
        fig.add_scatter(x=part["hour"], y=part["forecast"], name=model)
    fig.update_layout(title="Queries per hour and the forecast band", yaxis_title="queries")
    ui.chart(fig, "forecast_band")
    st.subheader("Forecast backtest (last 14 days, 24 h ahead)")
    table = data.query(
        f"SELECT metric, model, mase, smape, origins FROM forecast_backtest WHERE {where} ORDER BY metric, mase",
        params,
        needs=("forecast_backtest",),
    )
    st.dataframe(table, hide_index=True)


def render_aggregate(data, filters) -> None:
    st.header("Forecast accuracy")
    medians = data.query(
        """SELECT metric, model, median(mase) AS median_mase, median(smape) AS median_smape, count(*) AS instances
           FROM forecast_backtest GROUP BY metric, model ORDER BY metric, median_mase""",
        needs=("forecast_backtest",),
    )
    if medians.empty:
        ui.no_data("forecast backtests")
        return
    st.dataframe(medians, hide_index=True)
    wins = data.query(
        """SELECT deployment, metric, arg_min(model, mase) AS winner
           FROM forecast_backtest WHERE isfinite(mase) GROUP BY deployment, instance_id, metric""",
        needs=("forecast_backtest",),
    )
    if wins.empty:  # every series younger than a week and a day: no MASE yet
        ui.no_data("backtest over a week and a day of history, so no winner")
        return
    counts = wins.groupby(["deployment", "metric", "winner"]).size().reset_index(name="instances won")
    fig = px.bar(counts, x="deployment", y="instances won", color="winner", facet_col="metric", barmode="group",
                 title="Which model wins where (lowest MASE per instance)")  # fmt: skip
    ui.chart(fig, "forecast_winners")
