"""Freshness of what the dashboards read (pipeline_assets/monitoring/freshness.py).

- The policy sits on every served mart that is an asset here, and on serving_snapshot.
- The episode rule: stale only while the group lags and nothing was published for a window.
- alert_on_stale_snapshot against the real broker: one STALE SNAPSHOT alert per episode; once the
  group catches up, fresh, and heartbeat materializations (parents first) for the assets with a
  policy, so Dagster's freshness evaluation sees them fresh too.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy
from raw_support import high_watermarks, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.monitoring.freshness import HEARTBEAT, StaleState, alert_on_stale_snapshot, assess
from pipeline_assets.orchestration.definitions import defs
from pipeline_assets.serving.snapshot import MANIFEST, write_json_atomically
from pipeline_assets.warehouse.served import SERVED_MODELS

WINDOW = 300.0


def test_policy_on_the_served_marts_and_the_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    window = timedelta(minutes=settings.freshness_minutes())
    materializable = {k.to_user_string() for k in graph.materializable_asset_keys}
    watched = {m for m in SERVED_MODELS if m in materializable} | {"serving_snapshot"}
    assert len(watched) >= 15
    for name in watched:
        policy = graph.get(dg.AssetKey(name)).freshness_policy_or_from_metadata
        assert isinstance(policy, TimeWindowFreshnessPolicy), name
        expected = window + timedelta(hours=1) if name == "workload_forecasts" else window
        assert policy.fail_window.to_timedelta() == expected, name
    # Not on the rest: a raw or staging table has no freshness promise of its own.
    assert graph.get(dg.AssetKey("clean_queries")).freshness_policy_or_from_metadata is None


def test_stale_only_with_lag_and_nothing_published_for_a_window() -> None:
    t0 = 1_000_000.0
    # No lag: never stale, however old the snapshot.
    assert assess(StaleState(), 0, t0 - 10 * WINDOW, t0, WINDOW) == (StaleState(), None)
    # Lag appears: counted from now, even with an old snapshot (a replay just started).
    state, change = assess(StaleState(), 500, t0 - 10 * WINDOW, t0, WINDOW)
    assert (state, change) == (StaleState(lag_since=t0), None)
    # A window of lag, nothing published: stale, once.
    state, change = assess(state, 400, t0 - 10 * WINDOW, t0 + WINDOW, WINDOW)
    assert (state, change) == (StaleState(lag_since=t0, stale_since=t0 + WINDOW), "stale")
    assert assess(state, 300, t0 - 10 * WINDOW, t0 + 2 * WINDOW, WINDOW) == (state, None)
    # A publish within the window ends it, though the lag goes on.
    fresh, change = assess(state, 300, t0 + 2 * WINDOW, t0 + 2 * WINDOW + 1, WINDOW)
    assert (fresh, change) == (StaleState(lag_since=t0), "fresh")
    # Stale again later: a new episode, a new alert.
    state, change = assess(fresh, 300, t0 + 2 * WINDOW, t0 + 3 * WINDOW, WINDOW)
    assert change == "stale"
    # The replay ends: fresh, and the lag's start is forgotten.
    assert assess(state, 0, t0 + 2 * WINDOW, t0 + 4 * WINDOW, WINDOW) == (StaleState(), "fresh")
    # Never published: stale once the lag has lasted a window.
    assert assess(StaleState(lag_since=t0), 10, None, t0 + WINDOW, WINDOW)[1] == "stale"


def _stale_alerts(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if " STALE SNAPSHOT " in line] if path.exists() else []


@pytest.mark.kafka
def test_sensor_alerts_once_per_episode_then_heartbeats_when_caught_up(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    alerts = tmp_path / "data" / "alerts.log"
    monkeypatch.setenv("REDSET_FRESHNESS_MINUTES", "5")
    producer = Producer({"bootstrap.servers": kafka_broker})
    for i in range(30):
        producer.produce(kafka_topic, value=b"{}", key=str(i).encode())
    assert producer.flush(30) == 0
    del producer  # no client left polling the broker after the session stops it
    # The last snapshot is 10 minutes old.
    serving = settings.serving_dir()
    serving.mkdir(parents=True)
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    write_json_atomically({"published_at": old.isoformat(), "tables": {}, "missing": []}, serving / MANIFEST)

    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization("query_metrics", partition="2024-03-01"))
    instance.report_runless_asset_event(dg.AssetMaterialization("leaderboard"))
    instance.report_runless_asset_event(dg.AssetMaterialization("serving_snapshot"))

    def tick(cursor: str | None) -> tuple[str, str | None]:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"kafka": KafkaResource()}, definitions=defs
        )
        return alert_on_stale_snapshot(context).skip_message, context.cursor

    # The group has lagged for 6 minutes (seeded in the cursor): stale, one alert.
    lagging = StaleState(lag_since=(datetime.now(timezone.utc) - timedelta(minutes=6)).timestamp()).to_cursor()
    message, cursor = tick(lagging)
    assert message.startswith("stale: lag 30")
    [line] = _stale_alerts(alerts)
    assert f"group={group}" in line and "lag=30" in line and "nothing published for 5 min" in line
    message, cursor = tick(cursor)  # still stale: no second alert, no heartbeat while lagging
    assert message.startswith("stale") and message.endswith("heartbeats: 0")
    assert len(_stale_alerts(alerts)) == 1

    # The group catches up: fresh, the episode over.
    consumer = Consumer({"bootstrap.servers": kafka_broker, "group.id": group, "enable.auto.commit": False})
    highs = high_watermarks(kafka_broker, kafka_topic)
    consumer.commit(offsets=[TopicPartition(kafka_topic, p, h) for p, h in highs.items()], asynchronous=False)
    consumer.close()
    monkeypatch.setenv("REDSET_FRESHNESS_MINUTES", "0")  # every materialization is old enough for a heartbeat
    message, cursor = tick(cursor)
    assert message.startswith("fresh: lag 0")
    assert StaleState.from_cursor(cursor) == StaleState()
    assert len(_stale_alerts(alerts)) == 1

    # Heartbeats for the three assets that had materialized, parents first, daily one per partition.
    beats = [
        r for k in (dg.AssetKey("query_metrics"), dg.AssetKey("leaderboard"), dg.AssetKey("serving_snapshot"))
        for r in instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=k), limit=5).records
    ]  # fmt: skip
    beats = sorted((r for r in beats if HEARTBEAT in r.asset_materialization.metadata), key=lambda r: r.storage_id)
    assert [r.asset_key.to_user_string() for r in beats] == ["query_metrics", "leaderboard", "serving_snapshot"]
    assert beats[0].partition_key == "2024-03-01"
    assert instance.get_latest_materialization_event(dg.AssetKey("stress_index")) is None  # never built: none


def test_heartbeats_request_no_rebuild() -> None:
    """The automation conditions rebuild an asset once its parents changed since it last did; a
    heartbeat of each asset with a policy (the asset beside its parents) asks for nothing, where a
    real update of a parent does."""
    import time

    from pipeline_assets.monitoring.freshness import report_heartbeats

    instance = dg.DagsterInstance.ephemeral()
    for key, partition in (("query_metrics", "2024-03-01"), ("leaderboard", None), ("serving_snapshot", None)):
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
    watched = dg.AssetSelection.assets("leaderboard", "table_workload", "serving_snapshot")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=watched)
    assert result.total_requested == 0

    beaten = report_heartbeats(instance, defs.resolve_asset_graph(), time.time() + 1, 0)
    assert set(beaten) == {dg.AssetKey("query_metrics"), dg.AssetKey("leaderboard"), dg.AssetKey("serving_snapshot")}
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=watched, cursor=result.cursor)
    assert result.total_requested == 0

    instance.report_runless_asset_event(dg.AssetMaterialization("query_metrics", partition="2024-03-01"))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=watched, cursor=result.cursor)
    assert [r.key for r in result.results if not r.true_subset.is_empty] == [dg.AssetKey("serving_snapshot")]
