"""When the lag sensor asks again for a raw dump that failed, and in which mode.

A dump that fails leaves the group's committed offsets where its last checkpoint put them, so
the sensor counts failures per committed position (not per high watermark, which moves while
producers write). It looks the last requested run up by its run key, and counts it only if it
really FAILED (or was canceled). After the n-th failure it waits `interval * 2**(n-1)` seconds
(at most MAX_BACKOFF_S) before asking again, so a failing dump does not hammer the broker or
the alert log. From REDSET_DUMP_MAX_ATTEMPTS failures on, it requests the dump in isolation mode
(isolation.py, run tag `redset/isolate=true`): a message whose processing raises goes to the
dead letters and the rest lands. If an isolation run fails too, the failure is not one
message's processing (files, commits, a dead process): `dump_stuck` is alerted, and runs are
still requested, in isolation mode, with the back-off.

Why not Dagster's own retries: run retries (`dagster/max_retries`) re-launch a run with the same
config and no delay, so they can neither back off nor switch to isolation mode, and between the
failure and the re-launch no run is in flight, so the sensor would start a second dump of the
same offsets. Op retry policies retry inside the run and cannot see a run whose process died.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.kafka import offsets
from pipeline_assets.runtime.runs import ENDED_BADLY, retry_run_key

ISOLATE_TAG = "redset/isolate"
RUN_KEY_TAG = "dagster/run_key"  # Dagster's tag on runs a sensor requested
MAX_BACKOFF_S = 3600.0
_STATE = ("from", "attempts", "failures", "run_key", "failed_at", "retry_after")  # the cursor's part
ISOLATION_CONFIG = {"ops": {"raw_queries": {"config": {"isolate_failures": True}}}}


def committed_key(topic: str, plan: list[offsets.PartitionOffsets]) -> str:
    """Where the group stands, e.g. 'redset.queries:0=100,1=98,2=0'."""
    return f"{topic}:" + ",".join(f"{o.partition}={o.start}" for o in plan)


def backoff_seconds(failures: int) -> float:
    return min(MAX_BACKOFF_S, settings.sensor_interval_seconds() * 2.0 ** max(0, failures - 1))


def next_dump(
    instance: dg.DagsterInstance, previous: dict[str, Any], topic: str, plan: list[offsets.PartitionOffsets], now: float
) -> tuple[dg.RunRequest | dg.SkipReason, dict[str, Any]]:
    """The sensor's answer when there is lag and no raw run in flight, and its cursor state:
    {from, attempts, failures, run_key (last requested), failed_at, retry_after}."""
    start = committed_key(topic, plan)
    state = {k: v for k, v in previous.items() if k in _STATE} if previous.get("from") == start else {}
    state = {"from": start, "attempts": 0, "failures": 0, **state}
    last = state.pop("run_key", None)
    if last is not None:
        _count_failure(instance, last, state, topic, now)
    failures = state["failures"]
    isolate = failures >= settings.dump_max_attempts()
    if now < state.get("retry_after", now):
        mode = "in isolation mode" if isolate else "again"
        return dg.SkipReason(
            f"the raw dump from {start} failed {failures} time(s); it runs {mode} in "
            f"{state['retry_after'] - now:.0f}s"
        ), state
    key = offsets.range_key(topic, plan)
    run_key = retry_run_key(key, state["attempts"])
    state.update(attempts=state["attempts"] + 1, run_key=run_key)
    tags = {"redset/lag": str(offsets.total_lag(plan)), "redset/failed_attempts": str(failures)}
    if isolate:
        return dg.RunRequest(run_key=run_key, run_config=ISOLATION_CONFIG, tags={**tags, ISOLATE_TAG: "true"}), state
    return dg.RunRequest(run_key=run_key, tags=tags), state


def _count_failure(instance: dg.DagsterInstance, run_key: str, state: dict[str, Any], topic: str, now: float) -> None:
    """If the run requested under `run_key` failed: one more failure, and the back-off."""
    records = instance.get_run_records(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    if not records or records[0].dagster_run.status not in ENDED_BADLY:
        return  # succeeded, or never launched (nothing to count): ask again now
    run = records[0].dagster_run
    failed_at = records[0].end_time or now
    state["failures"] += 1
    state["failed_at"] = failed_at
    state["retry_after"] = failed_at + backoff_seconds(state["failures"])
    if run.tags.get(ISOLATE_TAG) == "true":
        send_alert(
            "dump_stuck",
            f"the raw dump failed {state['failures']} times from these offsets, in isolation mode too, so "
            "not on one message (writing, committing or a dead process: see the run's logs); "
            f"it is tried again in isolation mode in {backoff_seconds(state['failures']):.0f}s",
            topic=topic,
            offsets=state["from"],
            run_id=run.run_id,
        )
