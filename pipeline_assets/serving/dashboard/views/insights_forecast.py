"""Forecasts on both pages: the instance's next week with the served model's band (forecast.DEFAULT_MODEL,
the band load_surge judges by), its backtest error and the model that won the instance's backtest
(expert), and which model wins where (aggregate). Reads workload_forecasts and forecast_backtest
(forecast_asset.py)."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pipeline_assets.serving.dashboard import ui

# forecast.DEFAULT_MODEL and forecast.BASELINE (the dashboards do not import insights/; a test keeps them equal).
DEFAULT_MODEL = "robust_seasonal"
BASELINE = "seasonal_naive"
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
        f"SELECT hour, model, forecast, lower, upper FROM workload_forecasts WHERE {where} AND metric = 'queries' "
        "AND model IN ($served, $baseline) ORDER BY model, hour",
        {**params, "served": DEFAULT_MODEL, "baseline": BASELINE},
        needs=("workload_forecasts",),
    )
    if ahead.empty:
        ui.no_data("forecasts")
        return
    fig = go.Figure()
    if not recent.empty:
        fig.add_scatter(x=recent["hour"], y=recent["queries"], name="last 14 days", line=dict(color="gray"))
    served = ahead[ahead.model == DEFAULT_MODEL]
    if not served.empty:  # the served model's band; the baseline as a line beside it
        fig.add_scatter(x=served["hour"], y=served["upper"], line=dict(width=0), showlegend=False, name="upper")
        fig.add_scatter(x=served["hour"], y=served["lower"], fill="tonexty", line=dict(width=0), name=f"{DEFAULT_MODEL} 80 % band")
    for model, part in ahead.groupby("model"):
        fig.add_scatter(x=part["hour"], y=part["forecast"], name=model, line=dict(dash=None if model == DEFAULT_MODEL else "dot"))
    fig.update_layout(title="Queries per hour and the forecast band", yaxis_title="queries")
    ui.chart(fig, "forecast_band")
    st.subheader("Forecast backtest (last 14 days, 24 h ahead)")
    table = data.query(
        f"SELECT metric, model, mase, smape, origins FROM forecast_backtest WHERE {where} ORDER BY metric, mase",
        params,
        needs=("forecast_backtest",),
    )
    if not table.empty:
        queries = table[(table.metric == "queries") & table.mase.notna()]
        won = queries.iloc[0]["model"] if not queries.empty else "none yet (under a week and a day of history)"
        mine = queries[queries.model == DEFAULT_MODEL]
        error = f"{mine.iloc[0]['mase']:.2f}" if not mine.empty else "n/a"
        st.caption(f"Served: {DEFAULT_MODEL} (backtest MASE {error} on queries); won this instance's backtest: {won}")
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
