"""Anomaly tags (mart workload_anomalies) on both pages: recent anomalies per instance on the
aggregate view, the tags marked on one instance's hourly series on the expert view."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.dashboard.filters import WHERE_INSTANCE, Filters, Instance, dates

IN_DATES = "CAST(hour AS DATE) BETWEEN $start AND $end"
TAG_COLORS = {
    "exec_spike": "#d62728",
    "heavy_spill": "#f58518",
    "queue_bound": "#9467bd",
    "abort_burst": "#8c564b",
    "load_surge": "#2ca02c",
}


def fleet_anomalies(data: ServingData, f: Filters) -> pd.DataFrame:
    """Per instance and tag in the filters' dates: tagged hours and the latest one."""
    return data.query(
        f"""
        SELECT deployment || ':' || instance_id AS instance, tag, count(*) AS hours, max(hour) AS latest
        FROM workload_anomalies
        WHERE list_contains($deployments, deployment) AND {IN_DATES}
        GROUP BY ALL ORDER BY latest DESC, instance, tag
        """,
        f.params(),
        needs=("workload_anomalies",),
    )


def recent_anomalies(data: ServingData, f: Filters, limit: int = 20) -> pd.DataFrame:
    return data.query(
        f"""
        SELECT hour, deployment || ':' || instance_id AS instance, tag, detail FROM workload_anomalies
        WHERE list_contains($deployments, deployment) AND {IN_DATES}
        ORDER BY hour DESC, instance, tag LIMIT {int(limit)}
        """,
        f.params(),
        needs=("workload_anomalies",),
    )


def instance_anomalies(data: ServingData, f: Filters, inst: Instance) -> pd.DataFrame:
    """One instance's tags with the hour's p95 execution ms and queries, to place the markers."""
    return data.query(
        f"""
        SELECT a.hour, a.tag, a.value, a.baseline, a.threshold, a.detail, m.exec_p95_ms, m.queries
        FROM workload_anomalies AS a
        LEFT JOIN query_metrics AS m USING (deployment, instance_id, hour)
        WHERE a.{WHERE_INSTANCE.replace(" AND ", " AND a.")} AND CAST(a.hour AS DATE) BETWEEN $start AND $end
        ORDER BY a.hour, a.tag
        """,
        {**inst.params(), **dates(f)},
        needs=("workload_anomalies", "query_metrics"),
    )


def render_aggregate(data: ServingData, filters: Filters) -> None:
    st.header("Anomalies per instance")
    counts = fleet_anomalies(data, filters)
    if counts.empty:
        ui.no_data("anomalies")
        return
    left, right = st.columns(2)
    with left:
        fig = px.bar(counts, x="instance", y="hours", color="tag", color_discrete_map=TAG_COLORS,
                     title="Tagged hours per instance")  # fmt: skip
        ui.chart(fig, "anomalies_per_instance")
    with right:
        st.subheader("Latest anomalies")
        st.dataframe(recent_anomalies(data, filters), hide_index=True)


def render_expert(data: ServingData, filters: Filters, instance: Instance) -> None:
    st.header("Anomaly tags")
    series = data.latency(filters, instance)
    if series.empty:
        ui.no_data("hourly series")
        return
    tags = instance_anomalies(data, filters, instance)
    fig = go.Figure(go.Scatter(x=series["hour"], y=series["exec_p95_ms"], name="p95 execution ms", mode="lines",
                               line_color="#1f3b73"))  # fmt: skip
    for tag, rows in tags.groupby("tag"):
        fig.add_trace(go.Scatter(
            x=rows["hour"], y=rows["exec_p95_ms"], name=tag, mode="markers", text=rows["detail"],
            marker=dict(color=TAG_COLORS.get(tag), size=10, symbol="diamond"), hovertemplate="%{x}<br>%{text}",
        ))  # fmt: skip
    fig.update_yaxes(type="log", title_text="ms")
    fig.update_layout(title="Anomaly tags on the hourly p95 execution time")
    ui.chart(fig, "anomaly_tags")
    if tags.empty:
        st.caption("No anomaly tags for this instance in these dates.")
    else:
        st.dataframe(tags[["hour", "tag", "value", "baseline", "threshold", "detail"]], hide_index=True)
