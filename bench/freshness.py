"""Freshness benchmark: seconds from a marker batch on Kafka to the dashboards' leaderboard, in
live mode and on the batch path, each WHILE a replay runs in the background as `make demo` replays.

    python bench/freshness.py                         # 5 markers per mode, 1M-row replay at 6480x
    python bench/freshness.py --markers 3 --modes live
    python bench/freshness.py --modes live --marker-gap 200   # markers spread over the replay's 20 min
    python bench/freshness.py --modes live --busy-cores 1     # one core kept busy by the bench's own spinner

Each mode gets the pipeline as the demo runs it, in private places (a broker on free ports shared by
both modes, a topic, data folder and DAGSTER_HOME of its own):
  live   `redset live`: one process consumes, runs the warm dbt for the touched days and the
         all-time marts, publishes the snapshot, every REDSET_LIVE_POLL_SECONDS;
  batch  `dagster-daemon run` with every sensor on at the demo interval (REDSET_SENSOR_INTERVAL):
         sensor -> raw dump run -> sensor -> dbt run -> snapshot.
In each, --replay-rows generated rows are replayed into the topic at --speed (the demo's: 6480x,
its first 24 hours at once) from the start to the end of the measurement. Once the first snapshot
is published, each marker is a small batch of queries for an instance the replay does not have, on
the replay's current day; its latency runs from the moment the producer has delivered it to the
moment the serving snapshot's leaderboard (serving_dir/leaderboard.parquet) ranks that instance
with exactly the marker's query count. The next marker follows a few seconds later.

Reports per mode the median and max over the markers and, per marker, where the time went: for
live mode the cycle that published it (waiting for a cycle, consume, dbt daily, dbt all-time,
publish); for the batch path the Dagster runs it set off (sensor wait, queue + launch, in steps).
Target (issue #13, P4): median <= 10 s and max <= 20 s in live mode; with --busy-cores (N processes
of the bench's own spinning for the whole run, issue #28), median <= 15 s and max <= 30 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import _freshness_batch as batch
import _freshness_live as live
from _busy import busy_cores, cpu_seconds
from _common import PROJECT_ROOT, Results, data_env, environment, private_broker, scratch_dir

DEFAULT_MARKERS = 5
DEFAULT_REPLAY_ROWS = 1_000_000
DEFAULT_SPEED = 6480.0  # the demo's (redset demo --speed)
REPLAY_START = date(2024, 3, 1)
REPLAY_DAYS = 91
MODES = ("live", "batch")
MARKER_ROWS = 100
MARKER_GAP_S = 3.0  # between a marker showing and the next one
SEED = 5
TARGET_S = 10.0  # median, live mode
TARGET_MAX_S = 20.0
BUSY_TARGET_S = (15.0, 30.0)  # median, max with --busy-cores (issue #28: one of two cores kept busy)
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

    from pipeline_assets.serving.publishes import current_dir

    path = current_dir(serving_dir) / "leaderboard.parquet"
    try:
        table = pq.read_table(path, columns=["entity", "value"],
                              filters=[("board", "=", LEADERBOARD_BOARD), ("period", "=", "all")])  # fmt: skip
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return {}  # not published yet (a publish is switched to whole, so never half a file)
    return dict(zip(table.column("entity").to_pylist(), table.column("value").to_pylist()))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT_S, alive: Callable[[], None] = lambda: None) -> float:
    """Poll `condition` every POLL_S seconds; the wall time (time.time()) it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not seen within {timeout:.0f}s")
        time.sleep(POLL_S)
    return time.time()




def replay_day(raw_dir: Path) -> date:
    """The replay's current day: the latest arrival_date folder in the raw zone."""
    days = [p.name.removeprefix("arrival_date=") for p in raw_dir.glob("arrival_date=*")]
    return date.fromisoformat(max(days)) if days else REPLAY_START


def start_replay(env: dict[str, str], source: Path, speed: float, log: Path) -> subprocess.Popen:
    """`redset produce` of `source` into the mode's topic at `speed`, as `make demo` starts it."""
    from pipeline_assets.demo.session import FULL_SPEED_HOURS

    cmd = [sys.executable, "-m", "pipeline_assets.cli", "produce", "--source", str(source), "--topic", env["REDSET_TOPIC"],
           "--speed", str(speed), "--full-speed-hours", str(FULL_SPEED_HOURS)]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


# --- the bench -----------------------------------------------------------------------------------


def measure(mode: str, root: Path, bootstrap: str, replay: Path, speed: float, markers: int, free_ids: list[int],
            gap: float = MARKER_GAP_S) -> dict[str, Any]:
    """One mode: its pipeline and the replay started, then `markers` markers one after another."""
    import dagster as dg

    from pipeline_assets.warehouse.build_windows import rows_per_day

    topic = f"bench.freshness.{mode}.{os.getpid()}"
    env = dagster_env(root, bootstrap, topic)
    data_dir, serving_dir = Path(env["REDSET_DATA_DIR"]), Path(env["REDSET_SERVING_DIR"])
    print(f"\n==== {mode}: pipeline and replay ({speed:g}x) starting", flush=True)
    with environment(env):
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        log = root / f"{mode}.log"
        pipeline = live.start_live(env, log) if mode == "live" else batch.start_daemon(env, log)
        producer = start_replay(env, replay, speed, root / "replay.log")
        started = time.time()

        def alive() -> None:
            if pipeline.poll() is not None:
                raise RuntimeError(f"{mode}: the pipeline exited with {pipeline.returncode}; see {log}")
            if producer.poll() is not None:
                raise RuntimeError(f"{mode}: the replay ended (exit {producer.returncode}) before the markers did: "
                                   "not measured under load; use more --replay-rows")  # fmt: skip

        per_marker = []
        try:
            shown = wait_until(lambda: bool(leaderboard_counts(serving_dir)), f"{mode}: first snapshot", alive=alive)
            print(f"   first snapshot after {shown - started:.1f}s", flush=True)
            for i in range(markers):
                time.sleep(gap)
                alive()
                entity, day = f"serverless:{free_ids[i]}", replay_day(Path(env["REDSET_RAW_DIR"]))
                table = marker_table(free_ids[i], day, SEED + 1 + i)
                print(f"\n== {mode} marker {i + 1}/{markers}: {table.num_rows} queries of {entity} on {day}", flush=True)
                delivered = produce_table(table, root / f"marker-{i}.parquet", topic, bootstrap)
                seen = wait_until(lambda: leaderboard_counts(serving_dir).get(entity) == table.num_rows,
                                  f"{mode} marker {entity}", alive=alive)  # fmt: skip
                latency = seen - delivered
                if mode == "live":
                    parts, detail = live.breakdown(data_dir, delivered, seen)
                else:
                    detail = batch.runs_since(instance, delivered)
                    parts = batch.breakdown(detail, latency)
                load = [round(x, 2) for x in os.getloadavg()]
                replayed = sum(rows_per_day(Path(env["REDSET_RAW_DIR"])).values())
                per_marker.append({"entity": entity, "day": day.isoformat(), "latency_s": round(latency, 2), "raw_rows": replayed,
                                   "breakdown": parts, "detail": detail, "load_avg_1_5_15": load})  # fmt: skip
                print(f"   on the dashboards' leaderboard {latency:.1f}s after delivery ({replayed:,} rows in the raw zone, "
                      f"load {load})", flush=True)  # fmt: skip
                print("   " + ", ".join(f"{k.removesuffix('_s')} {v}s" for k, v in parts.items()), flush=True)
                live.print_cycles(detail) if mode == "live" else batch.print_runs(detail)
        finally:
            batch.stop_group(producer)
            batch.stop_group(pipeline)
    return {"warmup_s": round(shown - started, 1), "markers": per_marker, "log": str(log)}


def run(markers: int, replay_rows: int, speed: float, modes: list[str], keep: bool, gap: float = MARKER_GAP_S,
        busy: int = 0) -> Results:  # fmt: skip
    from pipeline_assets.source import generator

    results = Results("freshness", {"markers": markers, "replay_rows": replay_rows, "speed": speed, "modes": ",".join(modes),
                                    "marker_rows": MARKER_ROWS, "marker_gap_s": gap, "busy_cores": busy})  # fmt: skip
    target_s, target_max_s = BUSY_TARGET_S if busy else (TARGET_S, TARGET_MAX_S)
    with scratch_dir("freshness", keep) as root, private_broker(root / "kafka") as bootstrap:
        replay = generator.generate(replay_rows, seed=SEED, start=REPLAY_START, days=REPLAY_DAYS)
        generator.write(replay, root / "replay.parquet")
        used = {i for d, i in zip(replay.column("deployment").to_pylist(), replay.column("instance_id").to_pylist())
                if d == "serverless"}  # fmt: skip
        free_ids = [i for i in range(199, -1, -1) if i not in used]
        del replay
        with busy_cores(busy) as spinners:
            started = time.monotonic()
            figures = {m: measure(m, root / m, bootstrap, root / "replay.parquet", speed, markers, free_ids, gap) for m in modes}
            # What the spinners got: a share well under 1 core each means the machine had no core to spare.
            spun = [round(cpu_seconds(p.pid) / (time.monotonic() - started), 2) for p in spinners]
    if busy:
        results.add(f"busy cores: {busy} spinning processes, CPU share of each", ", ".join(map(str, spun)), "cores")

    for mode, got in figures.items():
        latencies = [m["latency_s"] for m in got["markers"]]
        median, worst = statistics.median(latencies), max(latencies)
        met = median <= target_s and worst <= target_max_s
        results.add(f"{mode}: first snapshot after start (warm-up)", got["warmup_s"], "s")
        for i, m in enumerate(got["markers"]):
            results.add(f"{mode}: marker {i + 1} ({m['day']}, {m['raw_rows']:,} rows)", m["latency_s"], "s")
        results.add(f"{mode}: median / max of {len(latencies)} markers", f"{median:.1f} / {worst:.1f}", "s",
                    f"<= {target_s:g} / {target_max_s:g}", met if mode == "live" else None)  # fmt: skip
        for part in got["markers"][0]["breakdown"]:
            label = f"    {mode}: median " + part.removesuffix("_s").replace("_", " ")
            results.add(label, round(statistics.median(m["breakdown"][part] for m in got["markers"]), 1), "s")
    results.details |= {"modes": figures}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markers", type=int, default=DEFAULT_MARKERS, help="markers per mode; median and max are reported")
    parser.add_argument("--replay-rows", type=int, default=DEFAULT_REPLAY_ROWS, help="rows replayed in the background")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="the replay's time-scale factor")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: live, batch")
    parser.add_argument("--marker-gap", type=float, default=MARKER_GAP_S,
                        help="seconds between a marker showing and the next; 200 spreads 5 markers over a 1M-row replay")
    parser.add_argument("--busy-cores", type=int, default=0,
                        help="CPU-bound processes of the bench's own, spinning from the first mode to the last (issue #28)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (data, DAGSTER_HOME, logs)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    if args.busy_cores < 0:
        parser.error("--busy-cores: a count of processes, 0 or more")
    results = run(args.markers, args.replay_rows, args.speed, modes, args.keep, args.marker_gap, args.busy_cores)
    results.print_table()
    results.save()


if __name__ == "__main__":
    main()
