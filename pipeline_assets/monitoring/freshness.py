"""Freshness of what the dashboards read: freshness checks on data time, observations, and
`alert_on_stale_snapshot`.

The served marts that are assets here (warehouse/served.py) and serving_snapshot each have a
last-update freshness check (`freshness_checks`, run by `freshness_checks_sensor`): it fails once
the asset's data time is older than REDSET_FRESHNESS_MINUTES (workload_forecasts, hourly by
design, an hour more). The data time is the later of the last real build and the last
observation that the asset held everything Kafka had (monitoring/data_time.py). Dagster's
FreshnessPolicy counts materializations only, so it would call an idle asset stale; heartbeat
materializations hid failures and filled the history, hence observations and checks.

The stale-snapshot rule is narrower: the snapshot is stale only while the raw dump's consumer
group lags and nothing was published for a whole window (`assess`). With no lag, the sensor
observes each watched asset that is current (nothing owed, failing, in flight or stuck, no
landing file waiting) once its data time is older than half the window; it names the others.
A stale episode sends one `stale_snapshot` alert (send_alert: "STALE SNAPSHOT" in the alert log)
when it starts; the sensor's cursor remembers it until the snapshot is fresh again.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.kafka import offsets
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.kafka.offsets import TopicMissing
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.monitoring.data_time import report_observations
from pipeline_assets.raw.landing.folder import waiting_files
from pipeline_assets.runtime.runs import IN_FLIGHT
from pipeline_assets.serving.snapshot import read_manifest
from pipeline_assets.warehouse.served import SERVED_MODELS, watched_window, window

WATCHED_EXTRA = ("serving_snapshot",)
FRESHNESS_SENSOR = "freshness_checks_sensor"


def watched_windows(keys) -> dict[dg.AssetKey, timedelta]:
    """The assets among `keys` that have a freshness check, with their window."""
    names = set(SERVED_MODELS) | set(WATCHED_EXTRA)
    return {k: watched_window(k.to_user_string()) for k in keys if k.to_user_string() in names}


def freshness_checks(keys) -> tuple[list[dg.AssetChecksDefinition], dg.SensorDefinition]:
    """One last-update freshness check per watched asset among `keys` (grouped by window) and the
    sensor that runs each once it may have changed. Dagster calls them superseded by
    FreshnessPolicy, which reads builds only, not observations: hence the filter."""
    by_window: dict[timedelta, list[dg.AssetKey]] = {}
    for key, limit in watched_windows(keys).items():
        by_window.setdefault(limit, []).append(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        checks = [
            check for limit, group in sorted(by_window.items())
            for check in dg.build_last_update_freshness_checks(assets=group, lower_bound_delta=limit)
        ]  # fmt: skip
        dagsters = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks, minimum_interval_seconds=settings.sensor_interval_seconds(),
            name=FRESHNESS_SENSOR, default_status=dg.DefaultSensorStatus.RUNNING,
        )  # fmt: skip
    return checks, _one_run_at_a_time(dagsters, checks)


def _one_run_at_a_time(dagsters: dg.SensorDefinition, checks) -> dg.SensorDefinition:
    """Dagster's sensor, skipped while a run it requested is queued or running: Dagster sees a check
    as running only once the run's worker has planned it, so on busy cores (a worker takes tens of
    seconds to start) every tick requested the same checks again, each run another worker."""

    @dg.sensor(
        name=FRESHNESS_SENSOR, minimum_interval_seconds=settings.sensor_interval_seconds(),
        asset_selection=dg.AssetSelection.checks(*checks), default_status=dg.DefaultSensorStatus.RUNNING,
        description=dagsters.description,
    )  # fmt: skip
    def freshness_checks_sensor(context: dg.SensorEvaluationContext):
        tags = {"dagster/sensor_name": FRESHNESS_SENSOR}
        waiting = context.instance.get_runs(filters=dg.RunsFilter(tags=tags, statuses=IN_FLIGHT), limit=1)
        if waiting:
            return dg.SkipReason(f"freshness check run {waiting[0].run_id} is still {waiting[0].status.value}")
        return dagsters(context)

    return freshness_checks_sensor


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


def published_time(serving_dir: str | Path) -> float | None:
    """When the current snapshot was published (epoch seconds), or None before the first."""
    manifest = read_manifest(serving_dir)
    return datetime.fromisoformat(str(manifest["published_at"])).timestamp() if manifest else None


def consumer_lag(kafka: KafkaResource, topic: str, group: str) -> int:
    """Messages of `topic` the group has not committed yet (raises if Kafka cannot say)."""
    consumer = kafka.consumer(group)
    try:
        return offsets.total_lag(offsets.partition_offsets(consumer, topic, timeout=10.0))
    finally:
        close_within(consumer)  # nothing assigned, auto-commit off: commits nothing


def known_debts() -> dict[dg.AssetKey, str]:
    """Debts the event log cannot show: a landing file waiting to be ingested."""
    waiting = waiting_files(settings.landing_dir())
    return {dg.AssetKey("landing_queries"): f"{len(waiting)} landing file(s) waiting"} if waiting else {}


@dg.sensor(
    name="alert_on_stale_snapshot",
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends one STALE SNAPSHOT alert when the raw dump's consumer group lags and nothing was "
        "published for REDSET_FRESHNESS_MINUTES; clears when fresh again. With no lag, observes "
        "the data time of each asset with a freshness check that is current (nothing owed, "
        "failing, in flight or stuck); the freshness checks read it."
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
    published = published_time(settings.zone_url("serving"))
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
    observed, behind = [], {}
    if lag == 0 and context.repository_def is not None:
        graph = context.repository_def.asset_graph
        watched = watched_windows(graph.materializable_asset_keys)
        observed, behind = report_observations(context.instance, graph, watched, now, window_s / 2, known_debts())
    context.update_cursor(state.to_cursor())
    status = "stale" if state.stale_since is not None else "fresh"
    not_current = "; ".join(f"{k.to_user_string()}: {why}" for k, why in sorted(behind.items()))
    return dg.SkipReason(
        f"{status}: lag {lag:,}, last publish {last}; observed: {len(observed)}"
        + (f"; not current: {not_current}" if not_current else "")
    )
