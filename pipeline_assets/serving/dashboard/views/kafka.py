"""The Kafka page: topics and partitions with their watermarks and recent throughput, the consumer
groups' lag, and the dead-letter browser. Read-only: it never commits under any group.

A message's bytes are shown escaped, in tables and code blocks, never as Markdown or HTML.
"""

from __future__ import annotations

from datetime import datetime, time, timezone

import pandas as pd
import plotly.express as px
import streamlit as st

from pipeline_assets import settings
from pipeline_assets.kafka import console
from pipeline_assets.kafka.config import client_config
from pipeline_assets.raw.dead_letter_browser import Position, escaped, letters, raw_bytes
from pipeline_assets.serving.dashboard import ui

SHOWN_LETTERS = 500


def partitions_frame(config: dict[str, object], window_s: float = console.WINDOW_S) -> pd.DataFrame:
    rows = [{"topic": p.topic, "partition": p.partition, "low watermark": p.low, "high watermark": p.high,
             "messages": p.messages, "messages/s": round(p.recent / window_s, 2)}
            for p in console.partitions(config, window_s=window_s)]  # fmt: skip
    return pd.DataFrame(rows, columns=["topic", "partition", "low watermark", "high watermark", "messages", "messages/s"])


def lag_frame(config: dict[str, object], group: str, topic: str) -> pd.DataFrame:
    rows = [{"partition": p.partition, "committed": p.committed, "high watermark": p.high, "lag": p.lag}
            for p in console.group_lag(config, group, topic)]  # fmt: skip
    return pd.DataFrame(rows, columns=["partition", "committed", "high watermark", "lag"])


def render_topics(config: dict[str, object]) -> None:
    st.subheader("Topics")
    frame = partitions_frame(config)
    if frame.empty:
        ui.no_data("topics")
        return
    st.dataframe(frame, hide_index=True)
    fig = px.bar(frame, x="partition", y="messages/s", color="topic", barmode="group",
                 title=f"Messages per second over the last {console.WINDOW_S // 60} minutes")  # fmt: skip
    ui.chart(fig, key="kafka_rate")


def render_groups(config: dict[str, object]) -> None:
    st.subheader("Consumer groups")
    groups = console.consumer_groups(config)
    if not groups:
        ui.no_data("consumer groups")
        return
    ours = settings.consumer_group()
    group = st.selectbox("Group", groups, index=groups.index(ours) if ours in groups else 0, key="kafka_group")
    topics = console.topic_names(config)
    topic = st.selectbox("Topic", topics, index=topics.index(settings.topic()) if settings.topic() in topics else 0,
                         key="kafka_topic")  # fmt: skip
    frame = lag_frame(config, group, topic)
    st.metric("Lag (messages)", ui.number(frame["lag"].sum()))
    st.dataframe(frame, hide_index=True)


def render_dead_letters() -> None:
    st.subheader("Dead letters")
    directory = settings.dead_letter_dir()
    every = letters(directory, limit=None)
    if every.num_rows == 0:
        st.caption(f"No dead letters in {directory}.")
        return
    kinds = sorted(set(every.column("kind").to_pylist()))
    chosen = st.multiselect("Kind", kinds, default=kinds, key="dead_kinds")
    first, last = every.column("ingested_at")[-1].as_py(), every.column("ingested_at")[0].as_py()
    days = st.date_input("Ingested", value=(first.date(), last.date()), key="dead_days")
    since, until = (days if isinstance(days, tuple) and len(days) == 2 else (first.date(), last.date()))
    shown = letters(directory, chosen, datetime.combine(since, time.min, timezone.utc),
                    datetime.combine(until, time.max, timezone.utc), limit=SHOWN_LETTERS).to_pandas()  # fmt: skip
    st.caption(f"{len(shown):,} shown (at most {SHOWN_LETTERS}) of {every.num_rows:,} in {directory}")
    st.plotly_chart(px.histogram(every.to_pandas(), x="kind", title="Dead letters by kind"), key="dead_kinds_chart")
    shown["position"] = [f"{t}:{p}:{o}" if t is not None else "" for t, p, o in
                         zip(shown["kafka_topic"], shown["kafka_partition"], shown["kafka_offset"], strict=True)]  # fmt: skip
    shown["attempts"] = shown["attempts"].map(lambda a: max(len(a), 1))  # a failed replay is one more; landing: 1
    st.dataframe(shown[["ingested_at", "position", "kind", "reason", "attempts", "bytes", "first_bytes", "source_file"]],
                 hide_index=True, key="dead_table")  # fmt: skip
    positions = [p for p in shown["position"] if p]
    if positions:
        render_letter(st.selectbox("Open a letter", positions, key="dead_open"))


def render_letter(position: str) -> None:
    raw, fields = raw_bytes(settings.dead_letter_dir(), Position.parse(position))
    st.text(f"{fields['reason']}")
    st.code(escaped(raw, limit=4096), language=None)
    st.download_button("Download the raw bytes", data=raw or b"", file_name=f"{position.replace(':', '-')}.bin",
                       mime="application/octet-stream", key="dead_download")  # fmt: skip


st.title("Kafka")
config = client_config()
try:
    render_topics(config)
    render_groups(config)
except Exception as exc:  # a broker that is down must not hide the dead letters
    st.error(f"Kafka at {config['bootstrap.servers']} did not answer: {type(exc).__name__}: {exc}")
render_dead_letters()
