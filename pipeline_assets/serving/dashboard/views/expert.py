"""Expert view: one instance's stress, latency and table workload, its insights and their evidence."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.data import Instance
from pipeline_assets.serving.dashboard.views import (
    insight_evidence,
    insights_anomalies,
    insights_drift,
    insights_forecast,
    insights_repetition,
)

# Above this many days the stress chart shows the hourly peak instead of every minute.
MINUTE_DETAIL_DAYS = 3

data = ui.serving_data()
filters = ui.current_filters()

st.title("Expert view: one instance")
ui.published_caption(data)

instances = data.instances(filters)
if instances.empty:
    ui.no_data("instances")
    st.stop()

pick_deployment, pick_instance = st.columns(2)
deployment = pick_deployment.selectbox("Deployment", sorted(instances["deployment"].unique()), key="x_deployment")
mine = instances[instances["deployment"] == deployment]
queries_by_id = dict(zip(mine["instance_id"], mine["queries"]))
instance_id = pick_instance.selectbox(
    "Instance (busiest first)",
    list(queries_by_id),
    format_func=lambda i: f"{i}  ({queries_by_id[i]:,.0f} queries)",
    key="x_instance",
)
inst = Instance(deployment, int(instance_id))

# --- stress index with spill bars ---------------------------------------------------------
bounds = data.date_bounds()
start = filters.start or (bounds[0] if bounds else None)
end = filters.end or (bounds[1] if bounds else None)
days = (end - start).days + 1 if start and end else 1
bucket = 1 if days <= MINUTE_DETAIL_DAYS else 60
stress = data.stress(filters, inst, bucket_minutes=bucket)
if stress.empty:
    ui.no_data("stress index")
else:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    spill = go.Bar(x=stress["minute"], y=stress["spilled_mb_15m"], name="spilled MB (15 min)", marker_color="#f58518", opacity=0.5)
    fig.add_trace(spill, secondary_y=True)
    line = go.Scatter(x=stress["minute"], y=stress["stress_index"], name="stress index", mode="lines", line_color="#1f3b73")
    fig.add_trace(line, secondary_y=False)
    fig.update_yaxes(title_text="avg exec 15 min / 24 h", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="spilled MB", rangemode="tozero", showgrid=False, secondary_y=True)
    title = "Stress index" + ("" if bucket == 1 else " (hourly peak)")
    fig.update_layout(title=title)
    ui.chart(fig, "stress")

# --- latency percentiles -----------------------------------------------------------------
latency = data.latency(filters, inst)
if latency.empty:
    ui.no_data("latency")
else:
    percentiles = {"exec_p50_ms": "p50", "exec_p95_ms": "p95", "exec_p99_ms": "p99"}
    long = latency.rename(columns=percentiles).melt(
        id_vars="hour", value_vars=list(percentiles.values()), var_name="percentile", value_name="ms"
    )
    fig = px.line(long, x="hour", y="ms", color="percentile", log_y=True, title="Execution time percentiles per hour")
    ui.chart(fig, "latency")

# --- tables ---------------------------------------------------------------------------------
st.header("Tables")
workload = data.table_workload(inst)
left, right = st.columns(2)
with left:
    st.subheader("Workload per table")
    if workload.empty:
        ui.no_data("tables")
    else:
        st.caption(f"{int(workload['analytical'].sum())} of {len(workload)} tables are analytical (> 80% selects).")
        st.dataframe(
            workload,
            hide_index=True,
            column_config={
                "analytical": st.column_config.CheckboxColumn("analytical"),
                "select_share": st.column_config.NumberColumn("select share", format="percent"),
            },
        )
with right:
    st.subheader("Most accessed tables")
    top = data.top_tables(filters, inst)
    if top.empty:
        ui.no_data("table access")
    else:
        bars = top.assign(table=top["table_id"].astype(str)).melt(
            id_vars="table", value_vars=["reads", "writes"], var_name="access", value_name="queries"
        )
        fig = px.bar(bars, x="queries", y="table", color="access", orientation="h", title="Reads and writes, top tables")
        fig.update_yaxes(categoryorder="total ascending", type="category")
        ui.chart(fig, "top_tables")

gaps = data.ingest_gaps(filters, inst)
if gaps.empty:
    ui.no_data("selects on ingested tables")
else:
    minutes = gaps.assign(
        table=gaps["table_id"].astype(str),
        since=gaps["seconds_since_last_ingest"] / 60,
        until=gaps["seconds_until_next_ingest"] / 60,
    )
    left, right = st.columns(2)
    with left:
        fig = px.histogram(minutes.dropna(subset=["since"]), x="since", color="table", nbins=40, title="Minutes since the last ingest")
        ui.chart(fig, "since_ingest")
    with right:
        fig = px.histogram(minutes.dropna(subset=["until"]), x="until", color="table", nbins=40, title="Minutes until the next ingest")
        ui.chart(fig, "until_ingest")

insights_drift.render_expert(data, filters, inst)
insights_forecast.render_expert(data, filters, inst)
insights_anomalies.render_expert(data, filters, inst)
insights_repetition.render_expert(data, filters, inst)
insight_evidence.render_expert(data, filters, inst)
