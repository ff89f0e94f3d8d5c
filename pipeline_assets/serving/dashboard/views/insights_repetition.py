"""Repetition and cache opportunity: fleet KPIs and the cache-opportunity board (aggregate view),
one instance's daily repeat share and cache hit rate (expert view)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.dashboard.filters import WHERE_DAY, WHERE_INSTANCE, Filters, Instance, dates

DAILY = "daily_query_repetition"
BOARD = "cache_opportunity_leaderboard"
BOARD_SIZE = 15


def fleet_shares(data: ServingData, f: Filters) -> pd.DataFrame:
    """One row: repeat share, cache hit rate and missed-cache share within the filters (ratios of
    the daily sums, so any date range adds up), plus the saved execution hours."""
    return data.query(
        f"""
        SELECT sum(queries) AS queries, sum(repeats) / sum(queries) AS repeat_share,
               sum(cache_hits) / sum(queries) AS cache_hit_rate,
               sum(missed_cache_repeats) / nullif(sum(repeats), 0) AS missed_cache_share,
               sum(saved_exec_hours) AS saved_exec_hours
        FROM {DAILY} WHERE {WHERE_DAY}
        """,
        f.params(),
        needs=(DAILY,),
    )


def board(data: ServingData, f: Filters, limit: int = BOARD_SIZE) -> pd.DataFrame:
    """The top of the all-time cache-opportunity board, in the filter's deployments."""
    return data.query(
        f"""
        SELECT rank, deployment, instance_id, saved_exec_hours, repeat_share, cache_hit_rate
        FROM {BOARD} WHERE list_contains($deployments, deployment) ORDER BY rank LIMIT $limit
        """,
        {"deployments": list(f.deployments), "limit": int(limit)},
        needs=(BOARD,),
    )


def instance_days(data: ServingData, f: Filters, inst: Instance) -> pd.DataFrame:
    """The instance's daily repeat share and cache hit rate, long form (one row per day and rate)."""
    df = data.query(
        f"""
        SELECT arrival_date, repeat_share AS "repeat share", cache_hit_rate AS "cache hit rate",
               missed_cache_share AS "missed-cache share"
        FROM {DAILY} WHERE {WHERE_INSTANCE} AND arrival_date BETWEEN $start AND $end ORDER BY arrival_date
        """,
        {**inst.params(), **dates(f)},
        needs=(DAILY,),
    )
    return df if df.empty else df.melt(id_vars="arrival_date", var_name="rate", value_name="share")


def percent(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.1%}"


def render_aggregate(data: ServingData, filters: Filters) -> None:
    st.header("Repetition and cache opportunity")
    shares = fleet_shares(data, filters)
    if shares.empty or pd.isna(shares.at[0, "queries"]):
        ui.no_data("repetition")
        return
    row = shares.iloc[0]
    cards = [
        ("Repeat share", percent(row["repeat_share"]), "Queries seen before on their instance (Redbench's key)"),
        ("Cache hit rate", percent(row["cache_hit_rate"]), "Queries answered from the result cache"),
        ("Missed-cache share", percent(row["missed_cache_share"]), "Repeats the result cache did not answer"),
        ("Cacheable hours", f"{row['saved_exec_hours']:,.1f} h", "Execution hours of repeats with no write in between"),
    ]
    for column, (label, value, help_text) in zip(st.columns(4), cards):
        column.metric(label, value, help=help_text, border=True)
    top = board(data, filters)
    if top.empty:
        ui.no_data("cache opportunity")
        return
    top = top.assign(instance=top["deployment"] + ":" + top["instance_id"].astype(str))
    fig = px.bar(
        top, x="saved_exec_hours", y="instance", orientation="h", hover_data=["repeat_share", "cache_hit_rate"],
        title="Cache opportunity: execution hours a result cache would save (all dates)", **ui.BY_DEPLOYMENT,
    )  # fmt: skip
    fig.update_yaxes(categoryorder="total ascending", type="category")
    ui.chart(fig, "cache_opportunity")


def render_expert(data: ServingData, filters: Filters, instance: Instance) -> None:
    st.subheader("Repeat share and cache hit rate per day")
    days = instance_days(data, filters, instance)
    if days.empty:
        ui.no_data("repetition")
        return
    fig = px.line(days, x="arrival_date", y="share", color="rate", markers=True)
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    ui.chart(fig, "repetition_per_day")
