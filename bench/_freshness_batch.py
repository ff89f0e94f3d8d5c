"""The batch path of bench/freshness.py: `dagster-daemon run` with every sensor on at the demo
interval (sensor -> raw dump run -> sensor -> dbt run -> snapshot), and where a marker's time went
along the Dagster runs it set off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import PROJECT_ROOT


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dagster-daemon run` (sensors, run queue) over the project's workspace; its own session."""
    daemon = Path(sys.executable).with_name("dagster-daemon")
    cmd = [str(daemon), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to a process group started with start_new_session (the daemon: it, its code server
    and the runs it started; live mode: it finishes its cycle), then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def runs_since(instance, since: float) -> list[dict[str, Any]]:
    """The Dagster runs created after `since` (time.time()), oldest first, times relative to it."""
    import dagster as dg

    from pipeline_assets.orchestration.sensors import RANGE_END_TAG, RANGE_START_TAG

    records = instance.get_run_records(
        filters=dg.RunsFilter(created_after=datetime.fromtimestamp(since, timezone.utc)), ascending=True
    )
    runs = []
    for r in records:
        run = r.dagster_run
        partition = run.tags.get("dagster/partition") or "..".join(
            filter(None, [run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)])
        )
        steps = _steps(instance, run.run_id)
        runs.append({
            "job": run.job_name if run.job_name != "__ASSET_JOB" else ",".join(k.to_user_string() for k in run.asset_selection or []),
            "partition": partition or None,
            "status": run.status.value,
            "created_s": round(r.create_timestamp.timestamp() - since, 2),
            "started_s": round(r.start_time - since, 2) if r.start_time else None,
            "steps_from_s": round(steps["from"] - since, 2) if steps else None,
            "steps_to_s": round(steps["to"] - since, 2) if steps else None,
            "steps_busy_s": round(steps["busy"], 2) if steps else None,
            "ended_s": round(r.end_time - since, 2) if r.end_time else None,
        })  # fmt: skip
    return runs


def _steps(instance, run_id: str) -> dict[str, float] | None:
    """When the run's first step started and its last step ended, and the seconds spent inside
    steps (the rest of that window is the executor starting a process per step)."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    started: dict[str, float] = {}
    busy, first, last = 0.0, None, None
    for e in instance.all_logs(run_id, of_type=kinds):
        if e.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            started[e.step_key] = e.timestamp
            first = e.timestamp if first is None else min(first, e.timestamp)
        elif e.step_key in started:
            busy += e.timestamp - started.pop(e.step_key)
            last = e.timestamp if last is None else max(last, e.timestamp)
    return {"from": first, "to": last, "busy": busy} if first is not None and last is not None else None


def critical_path(runs: list[dict[str, Any]], latency: float) -> list[dict[str, Any]]:
    """The chain of runs that led to the marker showing, oldest first: the last run whose steps
    ended before it showed, then for each run the one that was inside its steps when it was created
    (its trigger: a sensor reacts to a materialization, not to the end of the run) and went on longest."""
    candidates = [r for r in runs if r["steps_to_s"] is not None and r["steps_to_s"] <= latency + 0.5]
    path: list[dict[str, Any]] = []
    while candidates:
        created = path[-1]["created_s"] if path else float("inf")
        before = [r for r in candidates if r["steps_from_s"] < created]
        if not before:
            break
        path.append(max(before, key=lambda r: min(r["steps_to_s"], created)))
        candidates.remove(path[-1])
    return path[::-1]


def breakdown(runs: list[dict[str, Any]], latency: float) -> dict[str, float]:
    """Where a marker's latency went along its critical path; the parts add up to the latency:
    waiting for a sensor tick, queue + launch (pool slot, process start, code load), inside steps,
    between steps (the executor starts a process per step), and polling after the last step."""
    parts = {"sensor_wait_s": 0.0, "queue_and_launch_s": 0.0, "in_steps_s": 0.0, "between_steps_s": 0.0}
    path = critical_path(runs, latency)
    t = 0.0
    for r, following in zip(path, path[1:] + [None]):
        end = min(r["steps_to_s"], following["created_s"]) if following else r["steps_to_s"]
        parts["sensor_wait_s"] += r["created_s"] - t
        parts["queue_and_launch_s"] += r["steps_from_s"] - r["created_s"]
        inside = min(r["steps_busy_s"], end - r["steps_from_s"])
        parts["in_steps_s"] += inside
        parts["between_steps_s"] += end - r["steps_from_s"] - inside
        t = end
    parts["after_last_step_s"] = latency - t
    return {k: round(v, 2) for k, v in parts.items()}


def in_flight(instance) -> int:
    import dagster as dg

    from pipeline_assets.runtime.runs import IN_FLIGHT

    return len(instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)))


def print_runs(runs: list[dict[str, Any]]) -> None:
    for r in runs:
        part = f" [{r['partition']}]" if r["partition"] else ""
        print(f"     {r['job']}{part}: created +{r['created_s']}s, process up +{r['started_s']}s, "
              f"steps +{r['steps_from_s']}..+{r['steps_to_s']}s ({r['steps_busy_s']}s inside steps), "
              f"ended +{r['ended_s']}s ({r['status']})")  # fmt: skip
