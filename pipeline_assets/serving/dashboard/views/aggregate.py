"""Aggregate view: the whole fleet within the sidebar's filters."""

import plotly.express as px
import streamlit as st

from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.views import insights_anomalies, insights_drift, insights_forecast, insights_repetition

BOARD_LABELS = {
    "instances_by_queries": "Instances by queries",
    "instances_by_execution_hours": "Instances by execution hours",
    "instances_by_spilled_mb": "Instances by spilled MB",
    "instances_by_abort_rate": "Instances by abort rate (≥ 100 queries)",
    "top_users_by_queries": "Top users by queries",
    "longest_compiles": "Longest compiles (ms)",
}

data = ui.serving_data()
filters = ui.current_filters()

st.title("Fleet: aggregate view")
ui.published_caption(data)

# --- KPI cards -------------------------------------------------------------------------
k = data.kpis(filters)
cards = [
    ("Total queries", ui.number(k["queries"]), None),
    ("Successful", ui.number(k["successful"]), None),
    ("Aborted", ui.number(k["aborted"]), None),
    ("Cached", ui.number(k["cached"]), None),
    ("Scanned", ui.megabytes(k["mbytes_scanned"]), f"{k['mbytes_scanned']:,.0f} MB"),
    ("Spilled", ui.megabytes(k["mbytes_spilled"]), f"{k['mbytes_spilled']:,.0f} MB"),
    ("Joins", ui.number(k["joins"]), None),
    ("Aggregations", ui.number(k["aggregations"]), None),
]
for row in (cards[:4], cards[4:]):
    for column, (label, value, exact) in zip(st.columns(4), row):
        column.metric(label, value, help=exact, border=True)

# --- query mix and load over time ------------------------------------------------------
left, right = st.columns([1, 2])
types = data.query_types(filters)
with left:
    if types.empty:
        ui.no_data("queries")
    else:
        fig = px.pie(types, names="query_type", values="queries", hole=0.5, title="Query types")
        ui.chart(fig, "query_types")

hourly = data.hourly(filters)
with right:
    if hourly.empty:
        ui.no_data("hourly metrics")
    else:
        fig = px.line(hourly, x="hour", y="queries", title="Queries per hour", **ui.BY_DEPLOYMENT)
        ui.chart(fig, "per_hour")

left, right = st.columns(2)
with left:
    if not hourly.empty:
        fig = px.line(hourly, x="hour", y="cache_hit_rate", title="Cache hit rate", **ui.BY_DEPLOYMENT)
        fig.update_yaxes(tickformat=".0%", title="cached / queries")
        ui.chart(fig, "cache_hit_rate")

spill = data.spill_vs_scan(filters)
with right:
    if spill.empty:
        ui.no_data("scan metrics")
    else:
        fig = px.scatter(
            spill,
            x="mbytes_scanned",
            y="mbytes_spilled",
            size="queries",
            hover_data=["instance_id", "queries"],
            title="Spilled vs scanned MB, per instance",
            **ui.BY_DEPLOYMENT,
        )
        ui.chart(fig, "spill_vs_scan")

# --- leaderboards --------------------------------------------------------------------
st.header("Leaderboards")
# Known boards in BOARD_LABELS order (the first is the default), then any newer ones.
known = list(BOARD_LABELS)
boards = sorted(data.boards(), key=lambda b: (known.index(b) if b in known else len(known), b))
if not boards:
    ui.no_data("leaderboards")
else:
    pick, when = st.columns(2)
    board = pick.selectbox("Board", boards, format_func=lambda b: BOARD_LABELS.get(b, b), key="board")
    period = when.selectbox("Period", data.periods(filters), key="period")
    top = data.leaderboard(board, period, filters, limit=10)
    if top.empty:
        ui.no_data("rows on this board")
    else:
        fig = px.bar(top, x="value", y="entity", orientation="h", title=BOARD_LABELS.get(board, board), **ui.BY_DEPLOYMENT)
        fig.update_yaxes(categoryorder="total ascending", title="")
        ui.chart(fig, "leaderboard")

    users, compiles = st.columns(2)
    with users:
        st.subheader("Top 5 users by queries")
        top_users = data.leaderboard("top_users_by_queries", period, filters, limit=5)
        if top_users.empty:
            ui.no_data("users")
        else:
            st.dataframe(
                top_users[["entity", "deployment", "instance_id", "user_id", "value"]].rename(columns={"value": "queries"}),
                hide_index=True,
            )
    with compiles:
        st.subheader("Top 10 longest compiles")
        longest = data.leaderboard("longest_compiles", period, filters, limit=10)
        if longest.empty:
            ui.no_data("compiles")
        else:
            st.dataframe(
                longest[["query_id", "instance_id", "deployment", "value"]].rename(columns={"value": "compile ms"}),
                hide_index=True,
            )

# --- compile metrics -------------------------------------------------------------------
st.header("Compile metrics by query type")
compile_df = data.compile_by_type(filters)
if compile_df.empty:
    ui.no_data("compile metrics")
else:
    left, right = st.columns(2)
    with left:
        plan = compile_df.melt(
            id_vars="query_type",
            value_vars=["scans_avg", "joins_avg", "aggregations_avg"],
            var_name="operator",
            value_name="per query",
        )
        fig = px.bar(plan, x="query_type", y="per query", color="operator", barmode="group", title="Scans, joins, aggregations per query")
        ui.chart(fig, "plan_ops")
    with right:
        fig = px.bar(compile_df, x="query_type", y="compile_share", title="Compile share of total time")
        fig.update_yaxes(tickformat=".0%")
        ui.chart(fig, "compile_share")

insights_drift.render_aggregate(data, filters)
insights_forecast.render_aggregate(data, filters)
insights_anomalies.render_aggregate(data, filters)
insights_repetition.render_aggregate(data, filters)
