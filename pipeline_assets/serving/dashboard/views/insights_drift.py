"""Workload drift (week-over-week Jensen-Shannon distance of the query-type and scan-size mix)
and tail concentration (share of execution time from the top 1% of queries, users, tables).

The queries are plain functions of ServingData (the tests call them); render_* draw them.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.dashboard.filters import WHERE_INSTANCE, Filters, Instance, dates

DRIFT = "weekly_workload_drift"
TAIL = "tail_concentration"
# A week pair ranks on the aggregate page only when both weeks had this many queries: with a
# handful of queries the mix moves by chance alone.
MIN_QUERIES = 100
DISTANCES = {"query_type_js_distance": "query types", "scan_bucket_js_distance": "scan sizes"}
ENTITIES = ["query", "user", "table"]

# Weeks that overlap the date filter (a week starts up to 6 days before the first date).
WHERE_WEEK = "week_start BETWEEN $start - INTERVAL 6 DAY AND $end"


def changed_most(data: ServingData, f: Filters, limit: int = 10, min_queries: int | None = None) -> pd.DataFrame:
    """Per instance, its largest week-over-week distance in the period (the larger of the two
    measures ranks), with the week and the query type that moved most; largest first. Only
    weeks where both weeks had `min_queries` (default MIN_QUERIES) queries rank."""
    min_queries = MIN_QUERIES if min_queries is None else min_queries
    return data.query(
        f"""
        SELECT deployment, instance_id, deployment || ':' || instance_id AS instance,
               week_start, query_type_js_distance, scan_bucket_js_distance,
               top_changed_query_type, top_changed_scan_bucket
        FROM {DRIFT}
        WHERE list_contains($deployments, deployment) AND {WHERE_WEEK}
          AND queries >= $min_queries AND previous_queries >= $min_queries
          AND query_type_js_distance IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY deployment, instance_id
            ORDER BY greatest(query_type_js_distance, scan_bucket_js_distance) DESC, week_start
        ) = 1
        ORDER BY greatest(query_type_js_distance, scan_bucket_js_distance) DESC, deployment, instance_id
        LIMIT $limit
        """,
        {**f.params(), "min_queries": min_queries, "limit": limit},
        needs=(DRIFT,),
    )


def fleet_tail(data: ServingData, f: Filters) -> pd.DataFrame:
    """entity, top_share, entities, top_entities: the fleet row when both deployments are
    chosen, else the chosen deployment's (all time)."""
    return data.query(
        f"""
        SELECT entity, top_share, entities, top_entities, exec_hours, top_exec_hours FROM {TAIL}
        WHERE CASE WHEN len(list_distinct($deployments)) > 1 THEN scope = 'fleet'
                   ELSE scope = 'deployment' AND list_contains($deployments, deployment) END
        ORDER BY list_position(['query', 'user', 'table'], entity)
        """,
        {"deployments": list(f.deployments)},
        needs=(TAIL,),
    )


def instance_drift(data: ServingData, f: Filters, inst: Instance) -> pd.DataFrame:
    """The instance's weeks in the period, with both distances (NULL when not comparable)."""
    return data.query(
        f"""
        SELECT week_start, queries, previous_queries, query_type_js_distance, scan_bucket_js_distance,
               top_changed_query_type, top_changed_scan_bucket
        FROM {DRIFT} WHERE {WHERE_INSTANCE} AND {WHERE_WEEK}
        ORDER BY week_start
        """,
        {**inst.params(), **dates(f)},
        needs=(DRIFT,),
    )


def instance_tail(data: ServingData, inst: Instance) -> pd.DataFrame:
    """The instance's top-1% shares of execution time (all time)."""
    return data.query(
        f"""
        SELECT entity, top_share, entities, top_entities, exec_hours, top_exec_hours FROM {TAIL}
        WHERE scope = 'instance' AND {WHERE_INSTANCE}
        ORDER BY list_position(['query', 'user', 'table'], entity)
        """,
        inst.params(),
        needs=(TAIL,),
    )


def tail_bars(tail: pd.DataFrame, title: str, key: str) -> None:
    fig = px.bar(tail, x="entity", y="top_share", hover_data=["entities", "top_entities", "exec_hours"], title=title)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], title="share of execution time")
    fig.update_xaxes(title="top 1% of", categoryorder="array", categoryarray=ENTITIES)
    ui.chart(fig, key)


def render_aggregate(data: ServingData, filters: Filters) -> None:
    st.header("Workload drift and tail concentration")
    left, right = st.columns(2)
    with left:
        st.subheader("Instances that changed most")
        st.caption(
            f"Largest week-over-week Jensen-Shannon distance (0 = same mix, 1 = nothing in common) in the "
            f"period, between weeks of at least {MIN_QUERIES} queries each."
        )
        top = changed_most(data, filters)
        if top.empty:
            ui.no_data("week-over-week drift")
        else:
            bars = top.rename(columns=DISTANCES).melt(
                id_vars=["instance", "week_start", "top_changed_query_type", "top_changed_scan_bucket"],
                value_vars=list(DISTANCES.values()), var_name="mix", value_name="JS distance",
            )  # fmt: skip
            fig = px.bar(bars, x="JS distance", y="instance", color="mix", barmode="group", orientation="h",
                         hover_data=["week_start", "top_changed_query_type", "top_changed_scan_bucket"],
                         title="Largest weekly change of the mix")  # fmt: skip
            fig.update_yaxes(categoryorder="array", categoryarray=top["instance"].tolist()[::-1], title="")
            fig.update_xaxes(range=[0, 1])
            ui.chart(fig, "drift_changed_most")
    with right:
        st.subheader("Execution time from the top 1%")
        st.caption("Share of all-time execution hours from the heaviest 1% of queries, users and tables.")
        tail = fleet_tail(data, filters)
        if tail.empty:
            ui.no_data("tail concentration")
        else:
            tail_bars(tail, "Fleet tail concentration", "fleet_tail")


def render_expert(data: ServingData, filters: Filters, instance: Instance) -> None:
    st.header("Workload drift and tail concentration")
    left, right = st.columns([2, 1])
    with left:
        weeks = instance_drift(data, filters, instance)
        if weeks.empty or weeks["query_type_js_distance"].isna().all():
            ui.no_data("week-over-week drift (it needs two weeks with queries)")
        else:
            long = weeks.rename(columns=DISTANCES).melt(
                id_vars=["week_start", "queries", "previous_queries", "top_changed_query_type", "top_changed_scan_bucket"],
                value_vars=list(DISTANCES.values()), var_name="mix", value_name="JS distance",
            )  # fmt: skip
            fig = px.line(long, x="week_start", y="JS distance", color="mix", markers=True,
                          hover_data=["queries", "previous_queries", "top_changed_query_type", "top_changed_scan_bucket"],
                          title="Week-over-week drift of the mix")  # fmt: skip
            fig.update_yaxes(range=[0, 1])
            ui.chart(fig, "instance_drift")
    with right:
        tail = instance_tail(data, instance)
        if tail.empty:
            ui.no_data("tail concentration")
        else:
            tail_bars(tail, "Execution time from the top 1%", "instance_tail")
