"""Alerts for new rows of the mart workload_anomalies: the sensor `alert_on_new_anomalies`.

It reads the anomalies from the published serving snapshot (never the warehouse, which dbt may
hold locked), and sends one `workload_anomaly` alert per instance that has anomalies not alerted
before, at most one per instance per wall-clock hour across all tags: an instance already alerted
this hour keeps its new anomalies pending until the next hour. The cursor remembers which
(instance, hour, tag) were alerted and each instance's last alert hour.

The webhook gets at most WEBHOOK_BUDGET_S of one tick in all (alerts.send_alert waits that long
at most, then goes on): a hanging receiver cannot push the tick past Dagster's sensor timeout,
which would lose the cursor and send the same alerts again next tick.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import WEBHOOK_WAIT_S, send_alert
from pipeline_assets.serving import publishes

ANOMALIES = "workload_anomalies"
LISTED = 5  # anomalies named in one alert's message; the rest are counted
WEBHOOK_BUDGET_S = 20.0  # of one tick, for all its webhook POSTs; Dagster times a tick out at 60 s


@dataclass
class AlertState:
    """The sensor's cursor: alerted keys per instance ("deployment:id" -> ["hour|tag", ...]) and the
    wall-clock hour ("YYYY-MM-DDTHH") of each instance's last alert."""

    alerted: dict[str, list[str]] = field(default_factory=dict)
    last_alert: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> AlertState:
        return cls(**json.loads(cursor)) if cursor else cls()

    def to_cursor(self) -> str:
        return json.dumps({"alerted": self.alerted, "last_alert": self.last_alert}, sort_keys=True)


@dataclass(frozen=True)
class InstanceAlert:
    deployment: str
    instance_id: int
    anomalies: list[dict[str, Any]]  # new ones, oldest hour first

    @property
    def message(self) -> str:
        named = "; ".join(f"{a['tag']} at {a['hour']:%Y-%m-%d %H:00}: {a['detail']}" for a in self.anomalies[:LISTED])
        more = len(self.anomalies) - LISTED
        return f"{len(self.anomalies)} new anomalies on {self.deployment}:{self.instance_id}: {named}" + (
            f"; and {more} more" if more > 0 else ""
        )


def _key(row: dict[str, Any]) -> str:
    return f"{row['hour']:%Y-%m-%dT%H}|{row['tag']}"


def plan_alerts(rows: list[dict[str, Any]], state: AlertState, now: datetime) -> tuple[list[InstanceAlert], AlertState]:
    """The alerts to send now for `rows` (the mart's rows) and the state after sending them.

    Keys of anomalies no longer in the mart are forgotten (a replaced forecast drops its surges),
    so the cursor stays as small as the mart."""
    wall_hour = f"{now:%Y-%m-%dT%H}"
    by_instance: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_instance[f"{row['deployment']}:{row['instance_id']}"].append(row)
    alerts, alerted, last_alert = [], {}, dict(state.last_alert)
    for instance, anomalies in sorted(by_instance.items()):
        before = set(state.alerted.get(instance, ()))
        current = {_key(a) for a in anomalies}
        new = sorted((a for a in anomalies if _key(a) not in before), key=lambda a: (a["hour"], a["tag"]))
        if new and last_alert.get(instance) != wall_hour:
            alerts.append(InstanceAlert(new[0]["deployment"], int(new[0]["instance_id"]), new))
            last_alert[instance] = wall_hour
            before |= {_key(a) for a in new}
        alerted[instance] = sorted(before & current)  # pending ones stay out: alerted next hour
    return alerts, AlertState(alerted={k: v for k, v in alerted.items() if v}, last_alert=last_alert)


def read_anomalies() -> list[dict[str, Any]] | None:
    """The published anomalies, or None before the mart was first published."""
    try:
        _, table = publishes.current(settings.zone_url("serving")).read_table(f"{ANOMALIES}.parquet")
    except FileNotFoundError:
        return None
    return table.to_pylist()


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


@dg.sensor(
    name="alert_on_new_anomalies",
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Sends a workload_anomaly alert (alerts.send_alert) for new rows of the published mart "
        "workload_anomalies: at most one per instance per wall-clock hour, across all tags."
    ),
)
def alert_on_new_anomalies(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    rows = read_anomalies()
    if rows is None:
        return dg.SkipReason(f"{ANOMALIES} is not published yet")
    alerts, state = plan_alerts(rows, AlertState.from_cursor(context.cursor), wall_clock())
    deadline = time.monotonic() + WEBHOOK_BUDGET_S
    for alert in alerts:
        send_alert(
            "workload_anomaly", alert.message, context.log,
            webhook_wait_s=min(WEBHOOK_WAIT_S, max(0.0, deadline - time.monotonic())),
            deployment=alert.deployment, instance_id=alert.instance_id,
            hour=f"{alert.anomalies[-1]['hour']:%Y-%m-%d %H:00}",
            tags=",".join(sorted({a["tag"] for a in alert.anomalies})),
        )  # fmt: skip
    context.update_cursor(state.to_cursor())
    return dg.SkipReason(f"{len(alerts)} anomaly alerts sent")
