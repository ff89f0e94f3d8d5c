"""Pieces both dashboard pages share: the sidebar filters, live refresh, empty state, charts."""

from __future__ import annotations

import time
from datetime import date
import plotly.graph_objects as go
import streamlit as st

from pipeline_assets import settings
from pipeline_assets.serving import publishes
from pipeline_assets.serving.dashboard.data import Filters, ServingData

FILTERS_KEY = "filters"
# Plotly arguments that colour by deployment, the same colour on every chart.
BY_DEPLOYMENT = {"color": "deployment", "color_discrete_map": {"provisioned": "#1f77b4", "serverless": "#ff7f0e"}}
LAST_RUN_KEY = "_last_full_run"

# Shown until the first snapshot is published: the commands that produce one.
EMPTY_STATE = """
**No serving data yet** in `{serving_dir}`.

The dashboards read the Parquet snapshot that the Dagster asset `serving_snapshot` publishes
after each dbt build. To get one:

- run **`make demo`**: it starts Kafka, Dagster, the replay and these dashboards, and the first
  numbers appear within about two minutes; or
- with Dagster already running, replay data (`redset produce --source data/synthetic.parquet`)
  and let the sensors build `raw_queries` → dbt marts → `serving_snapshot`, or materialize
  them yourself: `dagster asset materialize -m pipeline_assets.orchestration.definitions --select serving_snapshot`.
"""


def serving_data() -> ServingData:
    """The current snapshot's data, loaded once for every rerun and session until the next publish."""
    zone = _zone(settings.zone_url("serving"))
    return _snapshot_data(zone.url, ServingData(zone).published_at())


# One open file system per zone for the app's life: opening s3fs's costs a new client and a check.
@st.cache_resource(max_entries=4, show_spinner=False)
def _zone(url: str) -> publishes.Zone:
    return publishes.zone(url)


# Keyed by the publish stamp: a new snapshot gets a fresh ServingData; the previous one stays for
# sessions still drawing with it, the one before is closed.
@st.cache_resource(max_entries=2, show_spinner=False, on_release=ServingData.close)
def _snapshot_data(url: str, published_at: str | None) -> ServingData:
    return ServingData(_zone(url))


def verification_banner(data: ServingData) -> None:
    """A warning on every page while live mode's dbt tests fail (serving/verification.py)."""
    text = data.verification_banner()
    if text:
        st.warning(text, icon="⚠️")


def empty_state(data: ServingData) -> None:
    st.info(EMPTY_STATE.format(serving_dir=data.zone.url), icon="⏳")


def sidebar(data: ServingData) -> Filters:
    """Deployment and date filters plus the live-refresh toggle; remembers the result for the pages.

    Rendered by the entry point, so the choices survive switching pages.
    """
    st.sidebar.header("Filters")
    present = data.deployments()
    chosen = st.sidebar.multiselect("Deployment", present, default=present, key="deployments")

    start: date | None = None
    end: date | None = None
    bounds = data.date_bounds()
    # "All dates" follows the data as the replay adds days; a fixed range would go stale.
    if bounds and not st.sidebar.toggle("All dates", value=True, key="all_dates"):
        picked = st.sidebar.date_input(
            "Date range", value=bounds, min_value=bounds[0], max_value=bounds[1], key="date_range"
        )
        if isinstance(picked, tuple) and len(picked) == 2:
            start, end = picked
        elif isinstance(picked, tuple) and len(picked) == 1:  # the user picked the first end only
            start = end = picked[0]

    filters = Filters(deployments=tuple(chosen), start=start, end=end)
    st.session_state[FILTERS_KEY] = filters
    live_refresh()
    return filters


def current_filters() -> Filters:
    return st.session_state.get(FILTERS_KEY) or Filters()


def live_refresh() -> None:
    """Rerun the whole app every N seconds while the toggle is on (new snapshots appear)."""
    st.sidebar.divider()
    on = st.sidebar.toggle("Live refresh", value=False, key="live")
    every = st.sidebar.number_input("Every (seconds)", min_value=2, max_value=600, value=10, step=1, key="every")
    st.session_state[LAST_RUN_KEY] = time.monotonic()
    if not on:
        return

    def tick() -> None:
        # The fragment also runs once within each full run; only rerun once `every` has passed.
        if time.monotonic() - st.session_state.get(LAST_RUN_KEY, 0.0) >= every:
            st.rerun(scope="app")

    st.fragment(tick, run_every=float(every))()


def published_caption(data: ServingData) -> None:
    manifest = data.manifest() or {}
    rows = manifest.get("tables", {}).get("query_metrics", {}).get("rows", 0)
    line = f"Snapshot published {manifest.get('published_at', '?')} · {rows:,} query_metrics rows"
    freshness = data.raw_freshness()
    st.caption(f"{line} · {freshness}" if freshness else line)


def chart(fig: go.Figure, key: str) -> None:
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10), legend_title_text="")
    st.plotly_chart(fig, key=key)


def no_data(what: str) -> None:
    st.caption(f"No {what} for these filters yet.")


def number(value: float) -> str:
    return f"{value:,.0f}"


def megabytes(value: float) -> str:
    """MB in the largest unit that keeps the number short: 289.2 TB rather than 289,151,912 MB."""
    for unit, size in (("PB", 1e9), ("TB", 1e6), ("GB", 1e3)):
        if abs(value) >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} MB"
