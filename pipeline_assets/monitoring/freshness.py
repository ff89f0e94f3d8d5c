"""Freshness of what the dashboards read: the heartbeat and `alert_on_stale_snapshot`.

The served marts (warehouse/served.py, those that are assets of this project) and
serving_snapshot carry `FreshnessPolicy.time_window(REDSET_FRESHNESS_MINUTES)`: Dagster's freshness
daemon marks one stale in the UI once its last materialization is older than the window
(workload_forecasts, rebuilt hourly by design, gets an hour more).

The project's rule is narrower: the snapshot is stale only while the raw dump's consumer group
lags on the topic and nothing was published for a whole window (`assess`). With no lag there is
nothing to publish, so nothing is stale: the sensor then reports a heartbeat materialization
(metadata `heartbeat`) for each asset with a policy whose last one is older than half the window,
in the graph's order (a mart's after its parents', so the automation conditions, which rebuild an
asset once its parents changed since it last did, see nothing to do), each daily mart for the
partition it last materialized. Dagster's evaluator counts materializations only, not
observations, hence materializations.

A stale episode sends one `stale_snapshot` alert (send_alert: "STALE SNAPSHOT" in the alert log)
when it starts; the sensor's cursor remembers it until the snapshot is fresh again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.kafka import offsets
from pipeline_assets.kafka.offsets import TopicMissing
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.serving.snapshot import read_manifest
from pipeline_assets.warehouse.served import window

HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class StaleState:
    """The sensor's cursor: since when (epoch seconds) the group lags, and the stale episode's start."""

    lag_since: float | None = None
    stale_since: float | None = None

    @classmethod
    def from_cursor(cls, cursor: str | None) -> StaleState:
        return cls(**json.loads(cursor)) if cursor else cls()

    def to_cursor(self) -> str:
        return json.dumps(asdict(self))


def assess(state: StaleState, lag: int, published: float | None, now: float, window_s: float) -> tuple[StaleState, str | None]:
    """The state after a tick that read `lag` and the last publish time, and what changed:
    "stale" (an episode starts), "fresh" (it ends) or None. Stale: lag now, and neither a publish
    nor the start of the lag within the last `window_s` (a replay just started is not stale)."""
    if lag <= 0:
        return StaleState(), ("fresh" if state.stale_since is not None else None)
    lag_since = state.lag_since if state.lag_since is not None else now
    if now - max(published or 0.0, lag_since) < window_s:
        return StaleState(lag_since, None), ("fresh" if state.stale_since is not None else None)
    if state.stale_since is not None:
        return state, None
    return StaleState(lag_since, now), "stale"


def published_time(serving_dir: Path) -> float | None:
    """When the current snapshot was published (epoch seconds), or None before the first."""
    manifest = read_manifest(serving_dir)
    return datetime.fromisoformat(str(manifest["published_at"])).timestamp() if manifest else None


def consumer_lag(kafka: KafkaResource, topic: str, group: str) -> int:
    """Messages of `topic` the group has not committed yet (raises if Kafka cannot say)."""
    consumer = kafka.consumer(group)
    try:
        return offsets.total_lag(offsets.partition_offsets(consumer, topic, timeout=10.0))
    finally:
        consumer.close()  # nothing assigned, auto-commit off: commits nothing


def report_heartbeats(instance: dg.DagsterInstance, graph, now: float, older_than_s: float) -> list[dg.AssetKey]:
    """A heartbeat materialization for each asset with a freshness policy whose last materialization
    is older than `older_than_s`, parents first. Never-materialized assets get none."""
    beaten = []
    for key in graph.toposorted_asset_keys:
        if graph.get(key).freshness_policy_or_from_metadata is None:
            continue
        last = instance.get_latest_materialization_event(key)
        if last is None or now - last.timestamp < older_than_s:
            continue
        partition = last.dagster_event.partition if last.dagster_event else None
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                key, partition=partition,
                metadata={HEARTBEAT: "no Kafka lag: nothing new to build, the data is current", "lag": 0},
            )
        )  # fmt: skip
        beaten.append(key)
    return beaten


@dg.sensor(
    name="alert_on_stale_snapshot",
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends one STALE SNAPSHOT alert when the raw dump's consumer group lags and nothing was "
        "published for REDSET_FRESHNESS_MINUTES; clears when fresh again. With no lag, reports a "
        "heartbeat materialization of the assets with a freshness policy (nothing is stale then)."
    ),
)
def alert_on_stale_snapshot(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.SkipReason:
    from confluent_kafka import KafkaException

    topic, group = settings.topic(), settings.consumer_group()
    try:
        lag = consumer_lag(kafka, topic, group)
    except (TopicMissing, KafkaException) as exc:
        return dg.SkipReason(f"cannot read the lag of group {group} on {topic}: {exc}")  # cursor kept
    now, window_s = time.time(), window().total_seconds()
    published = published_time(settings.serving_dir())
    state, change = assess(StaleState.from_cursor(context.cursor), lag, published, now, window_s)
    last = datetime.fromtimestamp(published, timezone.utc).isoformat(timespec="seconds") if published else "never"
    if change == "stale":
        send_alert(
            "stale_snapshot",
            f"nothing published for {settings.freshness_minutes()} min while group {group} lags {lag:,} "
            f"message(s) behind {topic} (last publish: {last})",
            context.log, topic=topic, group=group, lag=lag,
        )  # fmt: skip
    elif change == "fresh":
        context.log.info(f"serving snapshot fresh again (last publish: {last}, lag {lag:,})")
    beaten = []
    if lag == 0 and context.repository_def is not None:
        beaten = report_heartbeats(context.instance, context.repository_def.asset_graph, now, window_s / 2)
    context.update_cursor(state.to_cursor())
    status = "stale" if state.stale_since is not None else "fresh"
    return dg.SkipReason(f"{status}: lag {lag:,}, last publish {last}; heartbeats: {len(beaten)}")
