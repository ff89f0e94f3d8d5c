"""Freshness benchmark: seconds from a marker batch on Kafka to the dashboards' leaderboard.

    python bench/freshness.py                    # 5 markers, sensors at the demo interval
    python bench/freshness.py --markers 9 --rows 100000

The pipeline runs as `make demo` runs it, in private places: a broker on free ports, a temporary
data folder and DAGSTER_HOME, and `dagster-daemon run` with every sensor on at the demo interval
(REDSET_SENSOR_INTERVAL from pipeline_assets.demo.dagster_home). A baseline of --rows generated rows flows
through first. Then each marker is a small batch of queries for an instance the baseline does not
have; its latency runs from the moment the producer has delivered it to the moment the serving
snapshot's leaderboard (serving_dir/leaderboard.parquet) ranks that instance with exactly the
marker's query count. The next marker waits until no run is in flight.

Reports the median over the markers and, per marker, the Dagster runs it set off: when each was
created (sensor wait), started (launch) and finished (execution), relative to the delivery.
Target: median <= 10 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
from _common import PROJECT_ROOT, Results, data_env, environment, private_broker, scratch_dir

DEFAULT_MARKERS = 5
DEFAULT_ROWS = 5_000  # baseline rows over BASELINE_DAYS days: a warm pipeline, not a load test
BASELINE_DAYS = 3
BASELINE_START = date(2024, 3, 1)
MARKER_ROWS = 100
SEED = 5
TARGET_S = 10.0
WAIT_TIMEOUT_S = 1800.0  # generous: a loaded 2-core machine is slow, and the point is to measure
POLL_S = 0.2
LEADERBOARD_BOARD = "instances_by_queries"


# --- the pipeline, as `make demo` runs it ------------------------------------------------------


def dagster_env(root: Path, bootstrap: str, topic: str) -> dict[str, str]:
    from pipeline_assets.demo.dagster_home import DAGSTER_YAML_TEMPLATE, DEMO_SENSOR_INTERVAL

    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    # The project's instance settings, as the demo uses them (the `duckdb` pool limited to 1).
    shutil.copyfile(DAGSTER_YAML_TEMPLATE, home / "dagster.yaml")
    return {
        **data_env(root / "data"),
        "DAGSTER_HOME": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDSET_TOPIC": topic,
        "REDSET_CONSUMER_GROUP": f"{topic}-raw-dump",
        "REDSET_SENSOR_INTERVAL": os.environ.get("REDSET_SENSOR_INTERVAL", DEMO_SENSOR_INTERVAL),
    }


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dagster-daemon run` (sensors, run queue) over the project's workspace; its own session."""
    daemon = Path(sys.executable).with_name("dagster-daemon")
    cmd = [str(daemon), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def stop_daemon(proc: subprocess.Popen) -> None:
    """SIGTERM to the daemon's process group (it and the code server and runs it started)."""
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


# --- batches and what the dashboards show ----------------------------------------------------


def produce_table(table, path: Path, topic: str, bootstrap: str) -> float:
    """Write `table`, replay it into `topic`; returns the wall time (time.time()) of delivery."""
    from pipeline_assets.kafka.producer import produce
    from pipeline_assets.source import generator

    generator.write(table, path)
    stats = produce(path, topic, bootstrap=bootstrap, progress=False)
    if stats.errors:
        raise RuntimeError(f"{stats.errors} messages of {path.name} not delivered: {stats.first_error}")
    return time.time()


def marker_table(instance_id: int, day: date, seed: int):
    """MARKER_ROWS queries of one serverless instance on `day`."""
    import pyarrow as pa

    from pipeline_assets.source import generator

    table = generator.generate(MARKER_ROWS, seed=seed, deployment="serverless", start=day, days=1, instances=1)
    index = table.schema.get_field_index("instance_id")
    return table.set_column(index, "instance_id", pa.array([instance_id] * table.num_rows, pa.int64()))


def leaderboard_counts(serving_dir: Path) -> dict[str, float]:
    """entity -> all-time query count on the served leaderboard ({} before the first publication)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = serving_dir / "leaderboard.parquet"
    try:
        table = pq.read_table(path, columns=["board", "period", "entity", "value"])
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return {}  # not published yet (renames are atomic, so never half a file)
    rows = table.to_pylist()
    return {r["entity"]: r["value"] for r in rows if r["board"] == LEADERBOARD_BOARD and r["period"] == "all"}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT_S, alive: Callable[[], None] = lambda: None) -> float:
    """Poll `condition` every POLL_S seconds; the wall time (time.time()) it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not seen within {timeout:.0f}s")
        time.sleep(POLL_S)
    return time.time()


# --- where the time went ------------------------------------------------------------------------


def runs_since(instance, since: float) -> list[dict[str, Any]]:
    """The Dagster runs created after `since` (time.time()), oldest first, times relative to it."""
    import dagster as dg

    from pipeline_assets.sensors import RANGE_END_TAG, RANGE_START_TAG

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
    from pipeline_assets.sensors import IN_FLIGHT
    import dagster as dg

    return len(instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)))


def print_runs(runs: list[dict[str, Any]]) -> None:
    for r in runs:
        part = f" [{r['partition']}]" if r["partition"] else ""
        print(f"     {r['job']}{part}: created +{r['created_s']}s, process up +{r['started_s']}s, "
              f"steps +{r['steps_from_s']}..+{r['steps_to_s']}s ({r['steps_busy_s']}s inside steps), "
              f"ended +{r['ended_s']}s ({r['status']})")  # fmt: skip


# --- the bench -----------------------------------------------------------------------------------


def run(markers: int, rows: int, keep: bool) -> Results:
    from pipeline_assets.source import generator

    results = Results("freshness", {"markers": markers, "baseline_rows": rows, "marker_rows": MARKER_ROWS})
    with scratch_dir("freshness", keep) as root, private_broker(root / "kafka") as bootstrap:
        topic = f"bench.freshness.{os.getpid()}"
        env = dagster_env(root, bootstrap, topic)
        results.params["sensor_interval_s"] = int(env["REDSET_SENSOR_INTERVAL"])
        serving_dir = Path(env["REDSET_SERVING_DIR"])
        log = root / "dagster-daemon.log"
        with environment(env):
            import dagster as dg

            instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
            daemon = start_daemon(env, log)

            def alive() -> None:
                if daemon.poll() is not None:
                    raise RuntimeError(f"dagster-daemon exited with {daemon.returncode}; see {log}")

            try:
                baseline = generator.generate(rows, seed=SEED, start=BASELINE_START, days=BASELINE_DAYS)
                expected = {f"{r['deployment']}:{r['instance_id']}": 0 for r in baseline.select(["deployment", "instance_id"]).to_pylist()}
                print(f"\n== baseline: {rows:,} rows over {BASELINE_DAYS} days, {len(expected)} instances", flush=True)
                started = produce_table(baseline, root / "baseline.parquet", topic, bootstrap)

                def baseline_shown() -> bool:
                    return sum(leaderboard_counts(serving_dir).values()) >= rows

                shown = wait_until(baseline_shown, "baseline on the served leaderboard", alive=alive)
                warmup = shown - started
                print(f"   baseline on the dashboards after {warmup:.1f}s", flush=True)
                print_runs(runs_since(instance, started))

                used = {int(e.split(":")[1]) for e in expected if e.startswith("serverless:")}
                free_ids = [i for i in range(199, -1, -1) if i not in used]
                day = BASELINE_START + timedelta(days=BASELINE_DAYS - 1)
                latencies, per_marker = [], []
                for i in range(markers):
                    wait_until(lambda: in_flight(instance) == 0, "pipeline idle", alive=alive)
                    instance_id = free_ids[i]
                    entity = f"serverless:{instance_id}"
                    table = marker_table(instance_id, day, SEED + 1 + i)
                    print(f"\n== marker {i + 1}/{markers}: {table.num_rows} queries of {entity} on {day}", flush=True)
                    delivered = produce_table(table, root / f"marker-{i}.parquet", topic, bootstrap)
                    seen = wait_until(lambda: leaderboard_counts(serving_dir).get(entity) == table.num_rows,
                                      f"marker {entity}", alive=alive)  # fmt: skip
                    latency = seen - delivered
                    latencies.append(latency)
                    runs = runs_since(instance, delivered)
                    per_marker.append({"entity": entity, "latency_s": round(latency, 2), "runs": runs,
                                       "breakdown": breakdown(runs, latency)})  # fmt: skip
                    print(f"   on the dashboards' leaderboard {latency:.1f}s after delivery", flush=True)
                    print_runs(runs)
            finally:
                stop_daemon(daemon)

        median = statistics.median(latencies)
        results.add("baseline to dashboards (warm-up)", round(warmup, 1), "s")
        for i, m in enumerate(per_marker):
            results.add(f"marker {i + 1} ({m['entity']})", m["latency_s"], "s")
        results.add(f"median of {markers} markers", round(median, 1), "s", f"<= {TARGET_S:g}", median <= TARGET_S)
        results.add("min / max", f"{min(latencies):.1f} / {max(latencies):.1f}", "s")
        results.add("runs per marker (median)", statistics.median(len(m["runs"]) for m in per_marker), "runs")
        for part in per_marker[0]["breakdown"]:
            label = "    median " + part.removesuffix("_s").replace("_", " ")
            results.add(label, round(statistics.median(m["breakdown"][part] for m in per_marker), 1), "s")
        results.details |= {"markers": per_marker, "warmup_s": warmup, "daemon_log": str(log) if keep else None}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markers", type=int, default=DEFAULT_MARKERS, help="marker batches; the median is reported")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="baseline rows before the markers")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data, DAGSTER_HOME, logs)")
    args = parser.parse_args()
    results = run(args.markers, args.rows, args.keep)
    results.print_table()
    results.save()


if __name__ == "__main__":
    main()
