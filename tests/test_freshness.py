"""Freshness of what the dashboards read (pipeline_assets/monitoring/freshness.py, data_time.py).

- A freshness check on data time sits on every served mart that is an asset here, and on
  serving_snapshot; no FreshnessPolicy (it reads builds only).
- The episode rule: stale only while the group lags and nothing was published for a window.
- alert_on_stale_snapshot against the real broker: one STALE SNAPSHOT alert per episode; once the
  group catches up, fresh, and observations carrying the data time (parents first) for the
  watched assets that are current; the history keeps the real builds only.
- A failing build does not look fresh: neither it nor what is downstream of it is observed, and
  Dagster's freshness check fails on them once their last real build is older than the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from raw_support import high_watermarks, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.monitoring.data_time import DATA_TIME, report_observations
from pipeline_assets.monitoring.freshness import StaleState, alert_on_stale_snapshot, assess, watched_windows
from pipeline_assets.orchestration.definitions import FRESHNESS_CHECKS, defs
from pipeline_assets.durable import write_json_atomically
from pipeline_assets.serving.snapshot import MANIFEST
from pipeline_assets.warehouse.served import SERVED_MODELS

WINDOW = 300.0


def test_freshness_check_on_the_served_marts_and_the_snapshot() -> None:
    graph = defs.resolve_asset_graph()
    window = timedelta(minutes=settings.freshness_minutes())
    materializable = {k.to_user_string() for k in graph.materializable_asset_keys}
    watched = {m for m in SERVED_MODELS if m in materializable} | {"serving_snapshot"}
    assert len(watched) >= 15
    limits = {
        key.asset_key.to_user_string(): spec.metadata["dagster/freshness_params"].data["lower_bound_delta_seconds"]
        for checks in FRESHNESS_CHECKS for spec in checks.check_specs for key in [spec.key]
    }  # fmt: skip
    assert set(limits) == watched
    for name in watched:
        expected = window + timedelta(hours=1) if name == "workload_forecasts" else window
        assert limits[name] == expected.total_seconds(), name
        # No FreshnessPolicy: Dagster's evaluator counts builds only and would call an idle asset stale.
        assert graph.get(dg.AssetKey(name)).freshness_policy_or_from_metadata is None, name
    assert "clean_queries" not in limits  # a staging table has no freshness promise of its own
    assert defs.resolve_sensor_def("freshness_checks_sensor") is not None


def test_freshness_checks_sensor_requests_no_second_run_while_one_waits() -> None:
    """Dagster's freshness sensor sees a check as running only once a worker planned it: while the
    run it requested waits (queued, or a worker starting), each tick would request the same checks again."""
    sensor = defs.resolve_sensor_def("freshness_checks_sensor")
    every = {key for checks in FRESHNESS_CHECKS for key in checks.check_keys}
    with dg.instance_for_test() as instance:

        def tick():
            return sensor(dg.build_sensor_context(instance=instance, definitions=defs))

        first = tick()
        assert isinstance(first, dg.RunRequest) and set(first.asset_check_keys) == every
        run = dg.DagsterRun(job_name="__ASSET_JOB", run_id="waiting-freshness-run", status=dg.DagsterRunStatus.NOT_STARTED,
                            tags={"dagster/sensor_name": "freshness_checks_sensor"})  # fmt: skip
        instance.add_run(run)
        waiting = tick()
        assert isinstance(waiting, dg.SkipReason) and "waiting-freshness-run is still NOT_STARTED" in waiting.skip_message
        instance.report_run_failed(run)
        again = tick()
        assert isinstance(again, dg.RunRequest) and set(again.asset_check_keys) == every


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
def test_sensor_alerts_once_per_episode_then_observes_data_time_when_caught_up(
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
    message, cursor = tick(cursor)  # still stale: no second alert, no observation while lagging
    assert message.startswith("stale") and message.endswith("observed: 0")
    assert len(_stale_alerts(alerts)) == 1

    # The group catches up: fresh, the episode over.
    consumer = Consumer({"bootstrap.servers": kafka_broker, "group.id": group, "enable.auto.commit": False})
    highs = high_watermarks(kafka_broker, kafka_topic)
    consumer.commit(offsets=[TopicPartition(kafka_topic, p, h) for p, h in highs.items()], asynchronous=False)
    consumer.close()
    monkeypatch.setenv("REDSET_FRESHNESS_MINUTES", "0")  # every data time is old enough to observe again
    message, cursor = tick(cursor)
    assert message.startswith("fresh: lag 0")
    assert StaleState.from_cursor(cursor) == StaleState()
    assert len(_stale_alerts(alerts)) == 1
    # serving_snapshot reads marts never built since query_metrics changed: owed, so not observed, and named.
    assert "not current: " in message and "serving_snapshot: workload_anomalies is not current" in message

    # Observations for the two current assets, parents first, carrying the data time; the history
    # (materializations) keeps the three real builds only.
    keys = [dg.AssetKey("query_metrics"), dg.AssetKey("leaderboard"), dg.AssetKey("serving_snapshot")]
    seen = sorted(
        (r for k in keys for r in instance.fetch_observations(dg.AssetRecordsFilter(asset_key=k), limit=5).records),
        key=lambda r: r.storage_id,
    )
    assert [r.asset_key.to_user_string() for r in seen] == ["query_metrics", "leaderboard"]
    assert abs(seen[0].asset_observation.metadata[DATA_TIME].value - datetime.now(timezone.utc).timestamp()) < 60
    builds = [len(instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=k), limit=5).records) for k in keys]
    assert builds == [1, 1, 1]
    assert instance.get_latest_materialization_event(dg.AssetKey("stress_index")) is None  # never built: none

    # A landing file waiting to be ingested is owed: nothing below landing_queries is observed.
    monkeypatch.delenv("REDSET_LANDING_DIR", raising=False)
    settings.landing_dir().mkdir(parents=True)
    (settings.landing_dir() / "batch.parquet").write_bytes(b"PAR1")
    message, cursor = tick(cursor)
    assert "observed: 0" in message
    [why] = [part for part in message.split("; ") if part.startswith("query_metrics: ")]
    assert why.endswith("is not current: 1 landing file(s) waiting"), why


def _build_all(instance: dg.DagsterInstance, upstream_of: str, data_time: float) -> list[dg.AssetKey]:
    """A real-looking build of `upstream_of` and everything above it, parents first, whose data is
    of `data_time` (Dagster's freshness check reads DATA_TIME on a materialization too)."""
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.assets(upstream_of).upstream().resolve(graph)
    built = [k for k in graph.toposorted_asset_keys if k in keys and k in graph.materializable_asset_keys]
    for key in built:
        partition = "2024-03-01" if graph.get(key).partitions_def is not None else None
        instance.report_runless_asset_event(
            dg.AssetMaterialization(key, partition=partition, metadata={DATA_TIME: dg.MetadataValue.timestamp(data_time)})
        )
    return built


def _freshness_verdicts(instance: dg.DagsterInstance) -> dict[str, bool]:
    """Runs the code location's own freshness checks on `instance`."""
    job = dg.define_asset_job("check_freshness", selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS))
    result = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("check_freshness").execute_in_process(
        instance=instance
    )
    return {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}


def test_failing_build_does_not_look_fresh() -> None:
    """Everything was built 10 minutes ago, with no lag since; then leaderboard's build fails. The
    current assets are observed (fresh again); leaderboard and the snapshot above it are not, and
    their freshness checks fail. A heartbeat would have called them fresh."""
    import time

    instance = dg.DagsterInstance.ephemeral()
    now = time.time()
    built = _build_all(instance, "serving_snapshot", now - 600)

    @dg.asset(name="leaderboard")
    def broken_leaderboard() -> None:
        raise RuntimeError("a broken model")

    assert not dg.materialize([broken_leaderboard], instance=instance, raise_on_error=False).success

    graph = defs.resolve_asset_graph()
    observed, behind = report_observations(instance, graph, watched_windows(graph.materializable_asset_keys), now, 0, {})
    assert dg.AssetKey("query_metrics") in observed and dg.AssetKey("table_workload") in observed
    assert dg.AssetKey("leaderboard") not in observed and dg.AssetKey("serving_snapshot") not in observed
    assert behind[dg.AssetKey("leaderboard")].startswith("its last build failed (run ")
    assert behind[dg.AssetKey("serving_snapshot")].startswith("leaderboard is not current: its last build failed")

    verdicts = _freshness_verdicts(instance)
    assert verdicts["query_metrics"] is True and verdicts["table_workload"] is True
    assert verdicts["leaderboard"] is False and verdicts["serving_snapshot"] is False
    # The history lists the real builds only: one each, no event for "nothing happened".
    for key in built:
        assert len(instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=5).records) == 1

    # The model is fixed and rebuilt, then the snapshot: both current and fresh again.
    for key in ("leaderboard", "serving_snapshot"):
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    observed, behind = report_observations(
        instance, graph, watched_windows(graph.materializable_asset_keys), time.time(), 0, {}
    )
    assert dg.AssetKey("leaderboard") in observed and dg.AssetKey("serving_snapshot") in observed
    assert not behind
    verdicts = _freshness_verdicts(instance)
    assert verdicts["leaderboard"] is True and verdicts["serving_snapshot"] is True


def test_failed_daily_partition_is_not_hidden_by_a_later_partition_build() -> None:
    """query_metrics' 2024-03-02 build fails, then 2024-03-03 builds: the latest build succeeded, yet
    the failed day still makes query_metrics (and what is above it) not current, until it is rebuilt."""
    import time

    from pipeline_assets.warehouse.partitions import daily_partitions

    instance = dg.DagsterInstance.ephemeral()
    _build_all(instance, "serving_snapshot", time.time() - 600)

    @dg.asset(name="query_metrics", partitions_def=daily_partitions)
    def broken_query_metrics() -> None:
        raise RuntimeError("a broken model")

    assert not dg.materialize([broken_query_metrics], partition_key="2024-03-02", instance=instance,
                              raise_on_error=False).success  # fmt: skip
    instance.report_runless_asset_event(dg.AssetMaterialization("query_metrics", partition="2024-03-03"))
    graph = defs.resolve_asset_graph()
    observed, behind = report_observations(instance, graph, watched_windows(graph.materializable_asset_keys), time.time(), 0, {})
    assert dg.AssetKey("query_metrics") not in observed
    assert behind[dg.AssetKey("query_metrics")] == "the last build of partition 2024-03-02 failed"
    # Through whichever parent comes first (query_metrics, or workload_anomalies above it).
    assert behind[dg.AssetKey("serving_snapshot")].endswith("query_metrics is not current: the last build of partition 2024-03-02 failed")

    instance.report_runless_asset_event(dg.AssetMaterialization("query_metrics", partition="2024-03-02"))  # rebuilt
    _, behind = report_observations(instance, graph, watched_windows(graph.materializable_asset_keys), time.time(), 0, {})
    assert dg.AssetKey("query_metrics") not in behind


def test_observations_request_no_rebuild() -> None:
    """The automation conditions rebuild an asset once its parents changed since it last did; an
    observation of each watched asset (the asset beside its parents) asks for nothing, where a
    real update of a parent does."""
    import time

    instance = dg.DagsterInstance.ephemeral()
    for key, partition in (("query_metrics", "2024-03-01"), ("leaderboard", None), ("serving_snapshot", None)):
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
    watched = dg.AssetSelection.assets("leaderboard", "table_workload", "serving_snapshot")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=watched)
    assert result.total_requested == 0

    graph = defs.resolve_asset_graph()
    observed, _ = report_observations(instance, graph, watched_windows(graph.materializable_asset_keys), time.time() + 1, 0, {})
    assert set(observed) == {dg.AssetKey("query_metrics"), dg.AssetKey("leaderboard")}
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=watched, cursor=result.cursor)
    assert result.total_requested == 0

    instance.report_runless_asset_event(dg.AssetMaterialization("query_metrics", partition="2024-03-01"))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=watched, cursor=result.cursor)
    assert [r.key for r in result.results if not r.true_subset.is_empty] == [dg.AssetKey("serving_snapshot")]
