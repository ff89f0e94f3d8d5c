"""From an insight to its evidence (expert view): for each of the instance's anomaly tags, its
cache-opportunity row and its leaderboard entries, the query rows behind it with their Kafka topic,
partition and offset and their raw file, from the snapshot's evidence index (serving/evidence.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pipeline_assets.serving.dashboard import ui
from pipeline_assets.serving.dashboard.data import ServingData
from pipeline_assets.serving.dashboard.filters import WHERE_INSTANCE, Filters, Instance, dates
from pipeline_assets.serving.evidence import EVIDENCE

KINDS = {"anomaly": "Anomaly tags", "cache_opportunity": "Cache opportunity", "leaderboard": "Leaderboard entries"}
SHOWN = (
    "evidence_rank", "query_id", "user_id", "arrival_timestamp", "execution_duration_ms", "queue_duration_ms",
    "mbytes_spilled", "was_aborted", "kafka_topic", "kafka_partition", "kafka_offset", "raw_file", "source_file",
)  # fmt: skip


def insights(data: ServingData, f: Filters, inst: Instance) -> pd.DataFrame:
    """The instance's insights with evidence in the filters' dates (all-time ones always):
    insight_kind, insight_key, insight_rows (the query rows behind it in all, before the cap)."""
    return data.query(
        f"""
        SELECT insight_kind, insight_key, any_value(insight_rows) AS insight_rows FROM {EVIDENCE}
        WHERE {WHERE_INSTANCE} AND (insight_date IS NULL OR insight_date BETWEEN $start AND $end)
        GROUP BY insight_kind, insight_key ORDER BY insight_kind, insight_key
        """,
        {**inst.params(), **dates(f)},
        needs=(EVIDENCE,),
    )


def evidence_rows(data: ServingData, inst: Instance, kind: str, key: str) -> pd.DataFrame:
    """The kept query rows of one insight, the heaviest first."""
    return data.query(
        f"""
        SELECT {", ".join(SHOWN)} FROM {EVIDENCE}
        WHERE {WHERE_INSTANCE} AND insight_kind = $kind AND insight_key = $key ORDER BY evidence_rank
        """,
        {**inst.params(), "kind": kind, "key": key},
        needs=(EVIDENCE,),
    )


def cap(data: ServingData) -> int | None:
    """The publication's cap on rows per insight (REDSET_EVIDENCE_ROWS when it published)."""
    value = (data.manifest() or {}).get("evidence_rows_per_insight")
    return int(value) if value else None


def render_expert(data: ServingData, filters: Filters, instance: Instance) -> None:
    st.header("Evidence: the query rows behind each insight")
    found = insights(data, filters, instance)
    if found.empty:
        ui.no_data("insights with evidence")
        return
    st.caption(
        f"Each insight keeps at most {cap(data) or '?'} query rows (REDSET_EVIDENCE_ROWS), the ones that weigh "
        "most in it first: the longest for an execution spike, the most spilled for a heavy spill, ..."
    )
    for kind, label in KINDS.items():
        mine = found[found["insight_kind"] == kind]
        with st.expander(f"{label} ({len(mine)})", expanded=kind == "anomaly"):
            if mine.empty:
                st.caption(f"No {label.lower()} for this instance in these dates.")
                continue
            total = dict(zip(mine["insight_key"], mine["insight_rows"]))
            key = st.selectbox(label, list(total), key=f"evidence_{kind}")
            rows = evidence_rows(data, instance, kind, key)
            st.caption(f"{len(rows):,} of {total[key]:,} query rows shown.")
            st.dataframe(rows, hide_index=True, key=f"evidence_rows_{kind}")
