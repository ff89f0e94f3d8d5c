"""alert_on_new_anomalies: one alert per instance per wall-clock hour, never twice for an anomaly."""

from __future__ import annotations

import threading
from datetime import datetime

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_assets import settings
from pipeline_assets.monitoring import anomaly_alerts


def anomaly(deployment: str, instance_id: int, hour: str, tag: str) -> dict:
    return dict(deployment=deployment, instance_id=instance_id, hour=datetime.fromisoformat(hour), tag=tag,
                value=1.0, baseline=0.0, threshold=0.5, detail=f"{tag} detail")  # fmt: skip


@pytest.fixture
def serving(tmp_path, monkeypatch):
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    clock = {"now": datetime(2024, 6, 1, 9, 5)}
    monkeypatch.setattr(anomaly_alerts, "wall_clock", lambda: clock["now"])
    return tmp_path, clock


def publish(rows: list[dict]) -> None:
    path = settings.serving_dir() / "workload_anomalies.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def evaluate(cursor: str | None) -> str:
    with dg.build_sensor_context(cursor=cursor) as context:
        anomaly_alerts.alert_on_new_anomalies(context)
        return context.cursor


def alert_lines() -> list[str]:
    path = settings.alert_log_path()
    return path.read_text().splitlines() if path.exists() else []


def test_one_alert_per_instance_per_wall_clock_hour(serving):
    _, clock = serving
    assert evaluate(None) is None  # nothing published yet: no alert, no cursor
    publish([
        anomaly("provisioned", 1, "2024-03-08 10:00", "queue_bound"),
        anomaly("provisioned", 1, "2024-03-08 11:00", "heavy_spill"),
        anomaly("provisioned", 1, "2024-03-08 11:00", "exec_spike"),
        anomaly("serverless", 1, "2024-03-08 12:00", "abort_burst"),
    ])  # fmt: skip
    cursor = evaluate(None)
    lines = alert_lines()
    assert len(lines) == 2
    assert "WORKLOAD ANOMALY deployment=provisioned instance_id=1 hour=2024-03-08 11:00 tags=exec_spike,heavy_spill,queue_bound: 3 new anomalies" in lines[0]
    assert "deployment=serverless instance_id=1 hour=2024-03-08 12:00 tags=abort_burst: 1 new anomalies" in lines[1]

    # The same snapshot again: already alerted, nothing sent.
    cursor = evaluate(cursor)
    assert len(alert_lines()) == 2

    # A new anomaly on provisioned:1 within the same wall-clock hour waits; serverless:1 was alerted
    # this hour too, so its new one waits as well; provisioned:2 was not, so it gets one.
    publish([
        anomaly("provisioned", 1, "2024-03-08 10:00", "queue_bound"),
        anomaly("provisioned", 1, "2024-03-08 11:00", "heavy_spill"),
        anomaly("provisioned", 1, "2024-03-08 11:00", "exec_spike"),
        anomaly("provisioned", 1, "2024-03-08 13:00", "abort_burst"),
        anomaly("serverless", 1, "2024-03-08 12:00", "abort_burst"),
        anomaly("serverless", 1, "2024-03-08 13:00", "load_surge"),
        anomaly("provisioned", 2, "2024-03-08 13:00", "exec_spike"),
    ])  # fmt: skip
    clock["now"] = datetime(2024, 6, 1, 9, 59)
    cursor = evaluate(cursor)
    lines = alert_lines()
    assert len(lines) == 3 and "deployment=provisioned instance_id=2" in lines[2]

    # The next wall-clock hour: the pending ones go out, one alert per instance, each naming only
    # its new anomaly.
    clock["now"] = datetime(2024, 6, 1, 10, 0)
    cursor = evaluate(cursor)
    lines = alert_lines()
    assert len(lines) == 5
    assert "instance_id=1 hour=2024-03-08 13:00 tags=abort_burst: 1 new anomalies" in lines[3]
    assert "deployment=serverless instance_id=1 hour=2024-03-08 13:00 tags=load_surge: 1 new" in lines[4]

    # And nothing more later.
    clock["now"] = datetime(2024, 6, 1, 11, 0)
    evaluate(cursor)
    assert len(alert_lines()) == 5


def test_the_cursor_forgets_anomalies_gone_from_the_mart():
    rows = [anomaly("provisioned", 1, "2024-03-08 10:00", "load_surge"), anomaly("provisioned", 1, "2024-03-08 11:00", "exec_spike")]
    alerts, state = anomaly_alerts.plan_alerts(rows, anomaly_alerts.AlertState(), datetime(2024, 6, 1, 9))
    assert len(alerts) == 1 and len(alerts[0].anomalies) == 2
    _, state = anomaly_alerts.plan_alerts(rows[1:], state, datetime(2024, 6, 1, 10))
    assert state.alerted == {"provisioned:1": ["2024-03-08T11|exec_spike"]}


def test_the_sensor_is_registered_and_the_mart_reads_the_forecasts_asset():
    from pipeline_assets.orchestration.definitions import defs

    assert defs.resolve_sensor_def("alert_on_new_anomalies") is anomaly_alerts.alert_on_new_anomalies
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey("workload_anomalies")).parent_keys
    assert parents == {dg.AssetKey("workload_forecasts"), dg.AssetKey("query_metrics"), dg.AssetKey("hourly_workload_mix")}
    assert graph.get(dg.AssetKey("workload_anomalies")).partitions_def is None  # all-time
    assert dg.AssetKey("workload_anomalies") in graph.get(dg.AssetKey("serving_snapshot")).parent_keys


def test_a_hanging_webhook_does_not_make_the_sensor_send_the_same_alerts_again(serving, monkeypatch):
    from test_alerts import _trickling_server

    server, posts = _trickling_server()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    publish([anomaly("provisioned", 1, "2024-03-08 10:00", "queue_bound"), anomaly("serverless", 2, "2024-03-08 11:00", "exec_spike")])
    ticks: list[str] = []

    def two_ticks() -> None:
        ticks.append(evaluate(None))
        ticks.append(evaluate(ticks[0]))

    sensor = threading.Thread(target=two_ticks, daemon=True)
    sensor.start()
    sensor.join(2 * 60)  # two ticks, each within Dagster's 60 s sensor timeout
    server.shutdown()
    assert not sensor.is_alive(), "the sensor's tick is still waiting for the webhook"
    assert len(ticks) == 2 and ticks[0] == ticks[1]
    lines = alert_lines()
    assert [line.split(" WORKLOAD ANOMALY ")[1].split(" hour=")[0] for line in lines] == [
        "deployment=provisioned instance_id=1",
        "deployment=serverless instance_id=2",
    ]
    assert len(posts) == 2  # each alert POSTed once, none again on the second tick
