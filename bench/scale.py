"""Scale benchmark: generated rows through the whole graph on DuckDB, in resumable stages.

    python bench/scale.py --rows 1000000                    # every stage not done yet
    python bench/scale.py --rows 50000000 --stage dump      # one stage (its inputs must be done)
    python bench/scale.py --rows 50000000 --compare 10000000  # growth ratio per stage, 10M -> 50M
    python bench/scale.py --rows 1000000 --consumers-bench  # the dump with 1 vs 3 consumers

Stages, in order, each in a child process of its own (its peak RSS is its own):
  produce      generate --rows rows in slices of at most 5M (bench/_slices.py: memory stays one
               slice), produce them to a --partitions topic of a private broker
  dump         the raw dump (dump_kafka_job) of the whole topic into the raw zone
  build        the full dbt build through Dagster, as a first load runs it (bench/transform.py)
  incremental  one new day, +1 % rows: produced, dumped and built as the product does for a day
  snapshot     the serving snapshot (serving_snapshot_job)
  spark        the same raw zone built on Spark (REDSET_ENGINE=spark, with the project's Spark cluster
               running), its serving snapshot's row counts against DuckDB's; only when asked for

Resuming: everything lives in the work folder (--work, default /work/bench-scale/<rows>): the
broker's home (its log survives, the broker is restarted on the same ports), the raw zone, the
warehouse, and stages/<stage>.json, written when a stage completes. A stage with that file is
skipped; an interrupted one runs again (the dump resumes from the group's committed offsets,
the dbt models rebuild their partitions). Per stage: rows/s, wall time, the peak RSS of every
process of its tree (sampled from /proc), the disk of the Kafka log, raw zone and warehouse
afterwards, and the peak size of DuckDB's temp folder while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import _slices
from _common import Results, data_env, machine, rate
from tqdm import tqdm

STAGES = ("produce", "dump", "build", "incremental", "snapshot", "spark")
DEFAULT_STAGES = STAGES[:5]  # `all`: the DuckDB stages; spark runs when asked for
KAFKA_STAGES = {"produce", "dump", "incremental", "consumers"}
TOPIC = "bench.scale"
PARTITIONS = 3
SAMPLE_S = 0.5
DEFAULT_ROOT = Path("/work/bench-scale")


# --- sampling a process tree and the temp folder -------------------------------------------------


class TreeSampler:
    """Peak RSS of each process under `pid` and the peak bytes of `folders`, sampled every SAMPLE_S."""

    def __init__(self, pid: int, folders: list[Path]) -> None:
        self.pid = pid
        self.folders = folders
        self.peaks: dict[int, tuple[str, int]] = {}  # pid -> (label, peak RSS bytes)
        self.tree_peak = 0
        self.temp_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            total = 0
            for pid in _descendants(self.pid):
                rss = _rss(pid)
                if rss is None:
                    continue
                total += rss
                label, peak = self.peaks.get(pid) or (_label(pid, self.pid), 0)
                self.peaks[pid] = (label, max(peak, rss))
            self.tree_peak = max(self.tree_peak, total)
            self.temp_peak = max(self.temp_peak, sum(_bytes(f) for f in self.folders))

    def figures(self) -> dict[str, Any]:
        per_process = {f"{label} (pid {pid})": round(peak / 2**20) for pid, (label, peak) in sorted(self.peaks.items())}
        return {"peak_rss_mib": per_process, "tree_peak_rss_mib": round(self.tree_peak / 2**20),
                "temp_peak_bytes": self.temp_peak}  # fmt: skip


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _label(pid: int, stage_pid: int) -> str:
    if pid == stage_pid:
        return "stage"
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    text = " ".join(args)
    if "spawn_main" in text:
        return "raw consumer"
    if "resource_tracker" in text:
        return "multiprocessing resource tracker"
    if any(Path(a).name == "dbt" for a in args[:2]):
        return "dbt"
    return Path(args[0]).name or "?"


def _bytes(path: Path) -> int:
    """Disk used (allocated blocks: Kafka preallocates sparse index files)."""
    try:
        files = path.rglob("*") if path.is_dir() else [path]
        return sum(f.stat().st_blocks * 512 for f in files if f.is_file())
    except OSError:  # files come and go while we look
        return 0


# --- the work folder --------------------------------------------------------------------------------


class Work:
    def __init__(self, root: Path, slice_rows: int = _slices.SLICE_ROWS) -> None:
        self.root = root
        self.data = root / "data"
        self.kafka = root / "kafka"
        self.stages = root / "stages"
        self.slice_rows = slice_rows
        # slice-<k>.parquet per generated slice; named by the slice size, so no resume mixes two sizes
        self.source = root / "source" / f"slices-of-{slice_rows}"

    def figures(self, stage: str) -> dict[str, Any] | None:
        path = self.stages / f"{stage}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save(self, stage: str, figures: dict[str, Any]) -> None:
        self.stages.mkdir(parents=True, exist_ok=True)
        temp = self.stages / f".{stage}.json.tmp"
        temp.write_text(json.dumps(figures, indent=2, default=str))
        temp.replace(self.stages / f"{stage}.json")  # complete, or absent

    def env(self) -> dict[str, str]:
        return {**data_env(self.data), "REDSET_TOPIC": TOPIC, "REDSET_CONSUMER_GROUP": "bench-scale-raw",
                "REDSET_RAW_MAX_MESSAGES": str(10**12)}  # fmt: skip

    def temp_folders(self) -> list[Path]:
        """DuckDB's temp folder: `<warehouse>.tmp` unless a REDSET_DUCKDB_*TEMP* variable names one."""
        named = [Path(v) for k, v in os.environ.items() if k.startswith("REDSET_DUCKDB_") and "TEMP" in k and "/" in v]
        return named or [self.data / "warehouse.duckdb.tmp"]

    def disk(self) -> dict[str, int]:
        warehouse = self.data / "warehouse.duckdb"
        return {
            "kafka_log_bytes": _bytes(self.kafka / "data"),
            "raw_zone_bytes": _bytes(self.data / "raw"),
            "warehouse_bytes": _bytes(warehouse) + _bytes(warehouse.with_suffix(".duckdb.wal")),
        }


def running_broker(work: Work):
    """The work folder's broker, started on the ports it had before when they are free."""
    from pipeline_assets.kafka import broker

    ports_file = work.root / "kafka-ports.json"
    if ports_file.exists():
        ports = json.loads(ports_file.read_text())
        try:
            return broker.start(port=ports["port"], controller_port=ports["controller_port"], home=work.kafka, quiet=True)
        except broker.BrokerError as exc:
            print(f"restarting the broker on its old ports failed ({exc}); trying free ports", flush=True)
    started = broker.start_on_free_ports(work.kafka)
    ports_file.write_text(json.dumps({"port": started.port, "controller_port": started.controller_port}))
    return started


# --- running a stage in a child ---------------------------------------------------------------------


def run_stage(stage: str, work: Work, rows: int, env: dict[str, str], label: str | None = None) -> dict[str, Any]:
    """`python scale.py --child <stage>` with the tree sampled; its figures plus ours."""
    result_file = work.root / f".{stage}.result.json"
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", stage, "--rows", str(rows), "--work", str(work.root),
           "--slice-rows", str(work.slice_rows), "--result-file", str(result_file)]  # fmt: skip
    print(f"\n== {label or stage}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env={**os.environ, **work.env(), **env}, cwd=_common.PROJECT_ROOT)
    sampler = TreeSampler(proc.pid, work.temp_folders())
    code = proc.wait()
    sampler.stop()
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"stage {stage} failed with exit code {code}; run it again to resume (see its output above)")
    figures = json.loads(result_file.read_text())
    result_file.unlink()
    figures |= {"stage": stage, "wall_seconds": round(wall, 1), **sampler.figures(), "disk_after": work.disk(),
                "machine": machine(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    figures["rows_per_s"] = round(rate(figures.get("rows", 0), figures.get("seconds", wall)))
    print(f"   {figures.get('rows', 0):,} rows in {figures.get('seconds', wall):.1f}s "
          f"({figures['rows_per_s']:,} rows/s); peak RSS {figures['tree_peak_rss_mib']:,} MiB (tree)", flush=True)  # fmt: skip
    return figures


# --- the stages (child side) --------------------------------------------------------------------


def child_produce(work: Work, rows: int) -> dict[str, Any]:
    """Generate and produce slice by slice (bench/_slices.py): peak memory is one slice, not `rows`."""
    import transform as transform_bench

    from pipeline_assets.kafka.producer import produce
    from pipeline_assets.source import generator

    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    _fresh_topic(TOPIC, bootstrap)  # an interrupted produce starts over: no message twice
    generated = produced = 0.0
    total = 0
    sizes = _slices.slice_sizes(rows, work.slice_rows)
    # One file per slice: the producer sorts its source by arrival, so one file would be one big sort.
    for k, size in enumerate(sizes):
        path = work.source / f"slice-{k:03d}.parquet"
        if not path.exists():  # kept from an interrupted produce: not generated twice
            started = time.monotonic()
            table = _slices.generate_slice(k, rows, transform_bench.SEED, transform_bench.START, transform_bench.DAYS,
                                           work.slice_rows)  # fmt: skip
            generator.write(table, path)  # atomic: complete, or absent
            del table
            generated += time.monotonic() - started
        print(f"slice {k + 1}/{len(sizes)}: {size:,} rows", flush=True)
        stats = produce(path, TOPIC, partitions=PARTITIONS, bootstrap=bootstrap)
        if stats.errors:
            raise RuntimeError(f"{stats.errors} messages of {path} not delivered: {stats.first_error}")
        total += stats.rows
        produced += stats.seconds
    return {"rows": total, "seconds": produced, "generate_seconds": round(generated, 1), "slices": len(sizes)}


def _fresh_topic(topic: str, bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=30).topics:
        admin.delete_topics([topic])[topic].result(timeout=60)
        while topic in admin.list_topics(timeout=30).topics:
            time.sleep(1)


def child_dump(work: Work, rows: int) -> dict[str, Any]:
    import dagster as dg

    from pipeline_assets.orchestration.definitions import defs

    started = time.monotonic()
    result = defs.resolve_job_def("dump_kafka_job").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    [m] = result.asset_materializations_for_node("raw_queries")
    meta = {k: v.value for k, v in m.metadata.items()}
    return {"rows": meta["messages_consumed"], "seconds": time.monotonic() - started,
            "rows_written": meta["rows_written"], "dead_letters": meta["dead_letters"],
            "lag_after": meta["lag_after"], "consumers": meta.get("consumers")}  # fmt: skip


def child_build(work: Work, rows: int) -> dict[str, Any]:
    import dagster as dg
    import transform as transform_bench

    full = transform_bench.full_build(dg.DagsterInstance.ephemeral())
    return {"rows": rows, "seconds": full["seconds"], "steps": full["steps"], "model_seconds": full["model_seconds"]}


def child_incremental(work: Work, rows: int) -> dict[str, Any]:
    """One new day: +1 % rows produced (once), dumped, and the sensor's build for that day."""
    import dagster as dg
    import transform as transform_bench

    from pipeline_assets.kafka.producer import produce
    from pipeline_assets.source import generator

    day = transform_bench.START + timedelta(days=transform_bench.DAYS)
    marker = work.root / "incremental-produced.json"
    if not marker.exists():
        source = work.root / "incremental.parquet"
        generator.write(transform_bench.appended_day(rows), source)
        stats = produce(source, TOPIC, partitions=PARTITIONS, bootstrap=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        if stats.errors:
            raise RuntimeError(f"{stats.errors} messages not delivered: {stats.first_error}")
        marker.write_text(json.dumps({"rows": stats.rows, "seconds": stats.seconds}))
    produced = json.loads(marker.read_text())
    dumped = child_dump(work, rows)
    built = transform_bench.incremental_build(dg.DagsterInstance.ephemeral(), day)
    seconds = produced["seconds"] + dumped["seconds"] + built["seconds"]
    return {"rows": produced["rows"], "seconds": seconds, "day": day.isoformat(), "produce_seconds": produced["seconds"],
            "dump_seconds": dumped["seconds"], "dump_rows": dumped["rows"], "build_seconds": built["seconds"]}  # fmt: skip


def child_snapshot(work: Work, rows: int) -> dict[str, Any]:
    import dagster as dg

    from pipeline_assets.orchestration.definitions import defs

    started = time.monotonic()
    result = defs.resolve_job_def("serving_snapshot_job").execute_in_process(instance=dg.DagsterInstance.ephemeral())
    [m] = result.asset_materializations_for_node("serving_snapshot")
    tables = m.metadata["tables"].value
    return {"rows": sum(tables.values()), "seconds": time.monotonic() - started, "tables": tables}


def child_spark(work: Work, rows: int) -> dict[str, Any]:
    """The same raw zone built on Spark, snapshotted into serving-spark/, counts against DuckDB's."""
    import dagster as dg
    import transform as transform_bench

    started = time.monotonic()
    full = transform_bench.full_build(dg.DagsterInstance.ephemeral())
    snapshot = child_snapshot(work, rows)
    duck = (work.figures("snapshot") or {}).get("tables", {})
    counts = {t: {"duckdb": duck.get(t), "spark": n, "equal": duck.get(t) == n} for t, n in snapshot["tables"].items()}
    return {"rows": rows, "seconds": time.monotonic() - started, "build_seconds": full["seconds"], "marts": counts,
            "all_equal": all(c["equal"] for c in counts.values())}  # fmt: skip


def spark_missing() -> str | None:
    """Why the spark stage cannot run here yet (None when it can)."""
    from pipeline_assets import settings

    if not any("engine" in name for name in dir(settings)):
        return "REDSET_ENGINE=spark is not in this checkout yet (issue #12, items 1-3)"
    if not (settings.DBT_PROJECT_DIR / "profiles.yml").read_text().count("spark"):
        return "dbt_project/profiles.yml has no spark target yet"
    return None


def child_consumers(work: Work, rows: int) -> dict[str, Any]:
    return child_dump(work, rows)


CHILDREN = {"produce": child_produce, "dump": child_dump, "build": child_build, "incremental": child_incremental,
            "snapshot": child_snapshot, "spark": child_spark, "consumers": child_consumers}  # fmt: skip


# --- the bench (parent side) ---------------------------------------------------------------------


def run_stages(work: Work, rows: int, stages: list[str], consumers: int) -> None:
    needs_kafka = any(s in KAFKA_STAGES and not work.figures(s) for s in stages)
    broker = running_broker(work) if needs_kafka else None
    try:
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap} if broker else {}
        env["REDSET_RAW_CONSUMERS"] = str(consumers)
        for stage in tqdm(stages, desc="stages", unit="stage", disable=None):
            if work.figures(stage):
                print(f"\n== {stage}: done before ({work.stages / (stage + '.json')}), skipped", flush=True)
                continue
            _check_inputs(work, stage)
            if stage == "spark":
                why = spark_missing()
                if why:
                    print(f"\n== spark: not run: {why}", flush=True)
                    continue
                spark_env = {"REDSET_ENGINE": "spark", "REDSET_SERVING_DIR": str(work.data / "serving-spark")}
                work.save(stage, run_stage(stage, work, rows, {**env, **spark_env}))
                continue
            figures = run_stage(stage, work, rows, env)
            if broker:
                figures["broker_rss_mib"] = round((_rss(broker.pid) or 0) / 2**20)
            work.save(stage, figures)
    finally:
        if broker:
            from pipeline_assets.kafka import broker as broker_module

            broker_module.stop(work.kafka, quiet=True)  # its log stays in the work folder


def _check_inputs(work: Work, stage: str) -> None:
    before = {"dump": "produce", "build": "dump", "incremental": "build", "snapshot": "build", "spark": "snapshot"}
    need = before.get(stage)
    if need and not work.figures(need):
        raise SystemExit(f"stage {stage} needs stage {need} first: python bench/scale.py --stage {need} --work {work.root}")


def consumers_bench(work: Work, rows: int, counts: tuple[int, ...] = (1, 3)) -> Results:
    """The dump of the produce stage's topic with 1 and with 3 consumers (fresh groups, own raw zones)."""
    if not work.figures("produce"):
        run_stages(work, rows, ["produce"], 1)
    results = Results("scale-consumers", {"rows": rows, "partitions": PARTITIONS})
    broker = running_broker(work)
    try:
        measured = {}
        for n in counts:
            root = work.root / "consumers-bench" / f"n{n}"
            shutil.rmtree(root, ignore_errors=True)
            env = {**data_env(root), "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "REDSET_RAW_CONSUMERS": str(n),
                   "REDSET_CONSUMER_GROUP": f"bench-consumers-{n}-{uuid.uuid4().hex[:6]}"}  # fmt: skip
            measured[n] = run_stage("consumers", work, rows, env, label=f"dump with {n} consumer(s)")
            results.add(f"dump, {n} consumer(s)", measured[n]["rows_per_s"], "rows/s")
            results.add(f"    wall time, {n} consumer(s)", measured[n]["seconds"], "s")
            for name, mib in measured[n]["peak_rss_mib"].items():
                if mib >= 20:  # leave out shells and tiny helpers
                    results.add(f"    peak RSS {name}", mib, "MiB")
            for c in measured[n].get("consumers") or []:  # each process's own dump, without its start-up
                results.add(f"    consumer {c['consumer']}: partitions {c['partitions']}, {c['messages']:,} msgs",
                            c["seconds"], "s")  # fmt: skip
        results.add(f"rows/s ratio, {counts[-1]} / {counts[0]}",
                    round(measured[counts[-1]]["rows_per_s"] / measured[counts[0]]["rows_per_s"], 2), "x")  # fmt: skip
        results.details = {str(n): m for n, m in measured.items()}
    finally:
        from pipeline_assets.kafka import broker as broker_module

        broker_module.stop(work.kafka, quiet=True)
    return results


def table(work: Work, rows: int) -> Results:
    results = Results("scale", {"rows": rows, "work": str(work.root)})
    for stage in STAGES:
        f = work.figures(stage)
        if not f:
            continue
        results.add(f"{stage}: rows/s", f["rows_per_s"], "rows/s")
        results.add("    wall time (stage process, imports too)", f["wall_seconds"], "s")
        for name, mib in f["peak_rss_mib"].items():
            if mib >= 20:  # leave out shells and tiny helpers
                results.add(f"    peak RSS {name}", mib, "MiB")
        if "broker_rss_mib" in f:
            results.add("    Kafka broker RSS after", f["broker_rss_mib"], "MiB")
        if stage in ("build", "incremental"):
            results.add("    peak DuckDB temp folder", round(f["temp_peak_bytes"] / 2**20, 1), "MiB")
            raw = f["disk_after"]["raw_zone_bytes"]
            results.add("    peak temp / raw zone", round(f["temp_peak_bytes"] / raw, 3) if raw else None, "x")
        disk = f["disk_after"]
        results.add("    disk after: Kafka log / raw zone / warehouse",
                    " / ".join(f"{disk[k] / 2**20:,.0f}" for k in ("kafka_log_bytes", "raw_zone_bytes", "warehouse_bytes")),
                    "MiB")  # fmt: skip
        load = f["machine"]["load_avg_1_5_15"]
        results.add("    cores / load average at the end", f"{f['machine']['cores']} / {load[0]}", "")
        results.details[stage] = f
    return results


def compare(work: Work, other: Work) -> None:
    print(f"\ngrowth per stage, {other.root.name} -> {work.root.name} rows ({other.root} -> {work.root})")
    print(f"{'stage':<12} {'rows':>8} {'wall time':>10} {'rows/s':>8} {'peak RSS':>9} {'temp peak':>10}")
    for stage in STAGES:
        a, b = other.figures(stage), work.figures(stage)
        if not (a and b):
            print(f"{stage:<12} (not complete in both)")
            continue

        def ratio(key: str) -> str:
            return f"{b[key] / a[key]:.2f}x" if a.get(key) else "-"

        print(f"{stage:<12} {ratio('rows'):>8} {ratio('seconds'):>10} {ratio('rows_per_s'):>8} "
              f"{ratio('tree_peak_rss_mib'):>9} {ratio('temp_peak_bytes'):>10}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="generated rows")
    parser.add_argument("--work", type=Path, help=f"work folder (default {DEFAULT_ROOT}/<rows>)")
    parser.add_argument("--stage", default="all", choices=("all", *STAGES), help="one stage, or every DuckDB stage")
    parser.add_argument("--consumers", type=int, default=1, help="REDSET_RAW_CONSUMERS of the dump stages")
    parser.add_argument("--slice-rows", type=int, default=_slices.SLICE_ROWS,
                        help="the produce stage generates at most this many rows at a time (memory: ~0.4 GB per 1M)")
    parser.add_argument("--compare", type=int, metavar="ROWS", help="growth ratios from the run of ROWS rows")
    parser.add_argument("--consumers-bench", action="store_true", help="the dump with 1 vs 3 consumers")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Work(args.work or DEFAULT_ROOT / str(args.rows), args.slice_rows)
    if args.child:
        figures = CHILDREN[args.child](work, args.rows)
        Path(args.result_file).write_text(json.dumps(figures, default=str))
        return
    work.root.mkdir(parents=True, exist_ok=True)
    if args.compare:
        compare(work, Work(DEFAULT_ROOT / str(args.compare)))
        return
    if args.consumers_bench:
        results = consumers_bench(work, args.rows)
    else:
        run_stages(work, args.rows, list(DEFAULT_STAGES if args.stage == "all" else [args.stage]), args.consumers)
        results = table(work, args.rows)
    results.print_table()
    results.save()


if __name__ == "__main__":
    main()
