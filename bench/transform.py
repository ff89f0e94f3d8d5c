"""Transform benchmark: the dbt build through Dagster against a plain DuckDB SQL reference.

    python bench/transform.py                   # 10M generated rows in a temporary raw zone
    python bench/transform.py --rows 2000000

In one run, on the same raw zone (generated rows written as the raw dump writes them):
  (a) reference    bench/reference_marts.sql: every mart in one DuckDB process, no dbt;
  (b) dbt          the dbt assets through Dagster, as build_marts_job runs them for a first load:
                   one run, the daily models for the whole span as a range, then the all-time marts;
  (c) incremental  1% more rows for one new day appended to the raw zone, then what live mode (the
                   demo's default) runs for it: its warm dbt (parsed once, before the day lands)
                   runs the daily models of that day, then the all-time marts, insights included
                   (pipeline_assets/live/build.py run_models; tests run on their own cadence);
  (c2) the same day again as the batch path runs it: one Dagster run, `dbt build` (tests
                   included) of that day's partition, then of the all-time marts.
(Both then also publish the serving snapshot; (a) has no such step, so neither does this.)
Targets: b/a <= 2.0, c/b <= 0.10, and (a) and (b) give the same leaderboard. --verify-incremental
also checks the leaderboard after (c) against the reference re-run on the appended raw zone.
"""

from __future__ import annotations

import argparse
import os
import re
import string
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import _slices
from _build_watch import BuildWatch
from _common import Results, Stopwatch, data_env, dir_bytes, environment, scratch_dir

from pipeline_assets.warehouse.served import SERVED_MODELS

DEFAULT_ROWS = 10_000_000
SEED = 42
START = date(2024, 3, 1)
DAYS = 91  # 2024-03-01 .. 2024-05-30; the appended day is 2024-05-31, still inside the span
APPEND_SHARE = 0.01
# Appended rows get query ids far above the generator's, so they are new queries, not duplicates.
APPEND_QUERY_ID_OFFSET = 10**12
WRITE_SLICE_ROWS = 1_000_000
GENERATE_SLICE_ROWS = 10_000_000
PARTITIONS = 3
REFERENCE_SQL = Path(__file__).with_name("reference_marts.sql")
# Marts both (a) and (b) build: the row-level tables and every served mart the reference has a
# plain-SQL twin of; compared row for row (doubles as FLOAT, ~7 significant digits). The others
# (the insights marts and the forecasts) are listed in the result as not compared.
_REFERENCE_TABLES = set(re.findall(r"CREATE OR REPLACE TABLE (\w+)", REFERENCE_SQL.read_text()))
MARTS = tuple(m for m in ("clean_queries", "quarantine_queries", *SERVED_MODELS) if m in _REFERENCE_TABLES)
NOT_COMPARED = tuple(m for m in SERVED_MODELS if m not in _REFERENCE_TABLES)


# --- the raw zone ----------------------------------------------------------------------------------


class RawZoneFiller:
    """Writes generated rows into the raw zone exactly as the raw dump would: Kafka provenance,
    offsets continuing per partition, files named <topic>-p<partition>-o<first>-<last>.parquet."""

    def __init__(self, raw_dir: Path, topic: str) -> None:
        self.raw_dir = raw_dir
        self.topic = topic
        self.next_offset = [0] * PARTITIONS

    def write(self, table, batch_id: str) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from pipeline_assets import schema
        from pipeline_assets.raw import zone, zone_rows

        # The contract's file names for Kafka rows: <topic>-p<partition>-o<first>-<last>.parquet.
        writer = zone.RawZoneWriter(self.raw_dir, lambda info: f"{info.group}-o{info.first_offset}-{info.last_offset}.parquet")
        now = pa.scalar(time.time_ns() // 1000, pa.int64()).cast(schema.TIMESTAMP)
        for start in range(0, table.num_rows, WRITE_SLICE_ROWS):
            rows = table.slice(start, WRITE_SLICE_ROWS)
            n = rows.num_rows
            # Keys stay in one partition, like the producer's keyed messages (instance id decides).
            partition = (rows.column("instance_id").to_numpy() % PARTITIONS).astype(np.int32)
            offsets = np.empty(n, np.int64)
            for p in range(PARTITIONS):
                mine = np.flatnonzero(partition == p)
                offsets[mine] = self.next_offset[p] + np.arange(mine.size)
                self.next_offset[p] += mine.size
            instance = pc.cast(rows.column("instance_id"), pa.string())
            provenance = {
                "kafka_topic": pa.array(np.full(n, self.topic, object), pa.string()),
                "kafka_partition": pa.array(partition),
                "kafka_offset": pa.array(offsets),
                "kafka_timestamp": pa.array(np.full(n, now.value), schema.TIMESTAMP),
                "kafka_key": pc.binary_join_element_wise(rows.column("deployment"), instance, ":"),
                "batch_id": pa.array(np.full(n, batch_id, object), pa.string()),
                "ingested_at": pa.array(np.full(n, now.value), schema.TIMESTAMP),
            }
            raw = zone_rows.to_raw_table(rows, provenance)
            for p in range(PARTITIONS):
                writer.write(raw.filter(pa.array(partition == p)), f"{self.topic}-p{p}")
        writer.publish()


def generate(rows: int, seed: int, start: date, days: int, instances: int | None = None):
    from pipeline_assets.source import generator

    return generator.generate(rows, seed=seed, start=start, days=days, instances=instances)


def fill_in_slices(filler: RawZoneFiller, rows: int) -> None:
    """The initial rows, generated GENERATE_SLICE_ROWS at a time (bench/_slices.py): one 50M-row
    table takes ~18 GB, more than a shared 23 GB machine has. Up to one slice this is exactly
    generate(rows, SEED); further slices are independent draws with their own query ids."""
    for table in _slices.generate_slices(rows, SEED, START, DAYS, slice_rows=GENERATE_SLICE_ROWS):
        filler.write(table, "bench-initial")
        del table


def appended_day(rows: int):
    """1% more rows on the day after the data: the same instances, new query ids."""
    import pyarrow.compute as pc

    from pipeline_assets.source import generator

    # Same seed and instance count: the generator draws the same instance ids first.
    table = generate(max(1, int(rows * APPEND_SHARE)), SEED, START + timedelta(days=DAYS), 1,
                     instances=generator.default_instances(rows))  # fmt: skip
    shifted = pc.add(table.column("query_id"), APPEND_QUERY_ID_OFFSET)
    cached_source = pc.add(table.column("cache_source_query_id"), APPEND_QUERY_ID_OFFSET)
    table = table.set_column(table.schema.get_field_index("query_id"), "query_id", shifted)
    return table.set_column(table.schema.get_field_index("cache_source_query_id"), "cache_source_query_id", cached_source)


# --- (a) the reference -------------------------------------------------------------------------


def reference_sql(raw_dir: Path) -> str:
    from pipeline_assets import schema, settings
    from pipeline_assets.warehouse.dbt_assets import project_var

    def sql_list(values: tuple[str, ...]) -> str:
        return ", ".join(f"'{v}'" for v in values)

    return string.Template(REFERENCE_SQL.read_text()).substitute(
        raw_glob=f"{raw_dir}/arrival_date=*/[!._]*.parquet",
        span_start=settings.span_start().isoformat(),
        span_end=settings.span_end().isoformat(),
        query_types=sql_list(schema.QUERY_TYPES),
        ingest_query_types=sql_list(schema.INGEST_QUERY_TYPES),
        abort_rate_min_queries=os.environ.get("REDSET_ABORT_RATE_MIN_QUERIES", "100"),
        type_counts=",\n    ".join(f"count(*) FILTER (WHERE query_type = '{t}') AS n_{t}" for t in schema.QUERY_TYPES),
        implausible_values="\n        ".join(
            f"WHEN NOT ({column} BETWEEN {low} AND {high}) THEN 'implausible_value: {column}'"
            for column, (low, high) in project_var("plausible_bounds").items()
        ),
    )


def run_reference(raw_dir: Path, database: Path) -> dict[str, Any]:
    import duckdb

    database.unlink(missing_ok=True)
    statements = duckdb.extract_statements(reference_sql(raw_dir))
    seconds: dict[str, float] = {}  # per statement, to see which mart costs what
    with Stopwatch() as watch:
        with duckdb.connect(str(database)) as con:
            for statement in statements:
                started = time.monotonic()
                con.execute(statement)
                seconds[_created_name(statement.query)] = round(time.monotonic() - started, 2)
            con.execute("CHECKPOINT")  # like dbt's: the tables are on disk when it returns
    return {**watch.figures(), "statements": seconds}


def _created_name(query: str) -> str:
    """'clean_queries' for 'CREATE OR REPLACE TABLE clean_queries AS ...' (else the start)."""
    match = re.search(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?(?:TABLE|VIEW|MACRO)\s+(\w+)", query)
    return match.group(1) if match else query.strip()[:40]


# --- (b), (c) dbt through Dagster ----------------------------------------------------------------


def run_dbt_assets(instance, assets, **kwargs) -> dict[str, Any]:
    """dg.materialize the dbt assets; seconds and per-model / per-test execution durations."""
    import dagster as dg

    from pipeline_assets.warehouse.dbt_assets import dbt_resource

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # Dagster logs every test at DEBUG
    with Stopwatch() as watch:
        result = dg.materialize(assets, resources={"dbt": dbt_resource}, instance=instance, run_config=quiet, **kwargs)
    if not result.success:
        raise RuntimeError("dbt run through Dagster failed; see the log above")
    steps = {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events
             if e.event_type_value == "STEP_SUCCESS"}  # fmt: skip
    models, windows = {}, {}
    for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        name = materialization.asset_key.to_user_string()
        models[name] = _duration(materialization.metadata)
        windows[name] = (entry.timestamp - models[name], entry.timestamp)  # when it ran, for its spill
    tests = {
        f"{e.asset_key.to_user_string()}:{e.check_name}": _duration(e.metadata) for e in result.get_asset_check_evaluations()
    }
    return {**watch.figures(), "steps": steps, "models": models, "tests": tests, "model_windows": windows,
            "model_seconds": sum(models.values()), "test_seconds": sum(tests.values())}  # fmt: skip


def _duration(metadata) -> float:
    entry = metadata.get("Execution Duration")
    return float(getattr(entry, "value", entry) or 0.0)


def full_build(instance) -> dict[str, Any]:
    """What a first load runs: every daily partition as one range, then the all-time marts."""
    from pipeline_assets import settings
    from pipeline_assets.orchestration.sensors import RANGE_END_TAG, RANGE_START_TAG

    first, last = settings.span_start(), settings.span_end() - timedelta(days=1)
    return run_dbt_assets(instance, dbt_assets(), tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()})


def incremental_build(instance, day: date) -> dict[str, Any]:
    """What the sensor runs after a raw batch of one day: that partition, then the all-time marts."""
    return run_dbt_assets(instance, dbt_assets(), partition_key=day.isoformat())


def warm_day(dbt, day: date) -> dict[str, Any]:
    """What live mode runs for a new day, through its warm dbt: seconds and per-model seconds."""
    from pipeline_assets.live.build import run_models

    with Stopwatch() as watch:
        built = run_models(dbt, [day], with_insights=True)
    if not built.ok:
        raise RuntimeError(f"live mode's dbt run failed: {built.errors}")
    models = {m.name: m.seconds for m in built.models}
    return {**watch.figures(), "steps": {"dbt_daily": built.daily_seconds, "dbt_all_time": built.all_time_seconds},
            "models": models, "tests": {}, "model_seconds": sum(models.values()), "test_seconds": 0.0}  # fmt: skip


def dbt_assets() -> list:
    """build_marts_job's dbt steps (imported late: the scratch environment is set first)."""
    from pipeline_assets.warehouse import dbt_assets as dbt_stage

    return [dbt_stage.dbt_daily_models, dbt_stage.dbt_all_time_models]


def disk_figures(watch: BuildWatch, build: dict[str, Any], raw_dir: Path, warehouse: Path) -> dict[str, Any]:
    """Peak spill of (b) against the raw zone's size, its peak RSS, and each model's peak spill
    (the largest sample while the model ran: models that ran side by side share their peaks)."""
    raw = dir_bytes(raw_dir)
    per_model = {name: watch.peak_temp_between(start, end) for name, (start, end) in build["model_windows"].items()}
    return {**watch.figures(), "raw_zone_bytes": raw, "warehouse_bytes": warehouse.stat().st_size,
            "temp_to_raw": watch.peak_temp_bytes / raw if raw else None,
            "peak_temp_by_model": dict(sorted(per_model.items(), key=lambda kv: -kv[1]))}  # fmt: skip


def add_disk_figures(results: Results, disk: dict[str, Any]) -> None:
    gb = lambda n: round(n / 1e9, 2)  # noqa: E731
    results.add("    raw zone / warehouse after (b)", f"{gb(disk['raw_zone_bytes'])} / {gb(disk['warehouse_bytes'])}", "GB")
    results.add("    peak DuckDB temp disk in (b)", gb(disk["peak_temp_bytes"]), "GB")
    results.add("    peak temp disk / raw zone", round(disk["temp_to_raw"] or 0, 2), "x")
    results.add("    peak RSS in (b), largest process", gb(disk["peak_rss_bytes"]), "GB")
    spilling = {name: gb(b) for name, b in disk["peak_temp_by_model"].items() if b}
    print(f"   peak temp disk {gb(disk['peak_temp_bytes'])} GB; while running (GB): {spilling or 'none'}", flush=True)


# --- comparing (a) and (b) -----------------------------------------------------------------------


def compare(reference: Path, warehouse: Path) -> dict[str, Any]:
    """Leaderboards matched on (board, period, rank, entity) with values within 1e-9 relative;
    every mart also compared row for row."""
    import duckdb

    with duckdb.connect() as con:
        con.execute(f"ATTACH '{reference}' AS ref (READ_ONLY)")
        con.execute(f"ATTACH '{warehouse}' AS dbt (READ_ONLY)")
        only_ref, only_dbt, value_diff = con.execute(
            """
            SELECT count(*) FILTER (WHERE d.board IS NULL), count(*) FILTER (WHERE r.board IS NULL),
                   count(*) FILTER (WHERE r.board IS NOT NULL AND d.board IS NOT NULL AND (
                       abs(r.value - d.value) > 1e-9 * greatest(abs(r.value), 1)
                       OR r.deployment IS DISTINCT FROM d.deployment OR r.instance_id IS DISTINCT FROM d.instance_id
                       OR r.user_id IS DISTINCT FROM d.user_id OR r.query_id IS DISTINCT FROM d.query_id))
            FROM ref.main.leaderboard r
            FULL OUTER JOIN dbt.main.leaderboard d USING (board, period, rank, entity)
            """
        ).fetchone()
        leaderboard_rows = con.execute("SELECT count(*) FROM ref.main.leaderboard").fetchone()[0]
        marts = {name: _compare_table(con, name) for name in MARTS}
    return {
        "leaderboard_rows": leaderboard_rows,
        "leaderboard_only_in_reference": only_ref,
        "leaderboard_only_in_dbt": only_dbt,
        "leaderboard_value_differences": value_diff,
        "leaderboard_equal": only_ref == only_dbt == value_diff == 0,
        "marts": marts,
        "not_compared": list(NOT_COMPARED),
    }


def _compare_table(con, name: str) -> dict[str, int]:
    columns = [(c, t) for c, t, *_ in con.execute(f"DESCRIBE dbt.main.{name}").fetchall()]
    select = ", ".join(f'CAST("{c}" AS FLOAT) AS "{c}"' if t == "DOUBLE" else f'"{c}"' for c, t in columns)
    names = ", ".join(f'"{c}"' for c, _ in columns)

    def differing(left: str, right: str) -> int:
        sql = f"SELECT count(*) FROM (SELECT {select} FROM {left}.main.{name} EXCEPT ALL SELECT {select} FROM (SELECT {names} FROM {right}.main.{name}))"
        return con.execute(sql).fetchone()[0]

    count = lambda db: con.execute(f"SELECT count(*) FROM {db}.main.{name}").fetchone()[0]  # noqa: E731
    return {"rows_reference": count("ref"), "rows_dbt": count("dbt"),
            "only_reference": differing("ref", "dbt"), "only_dbt": differing("dbt", "ref")}  # fmt: skip


# --- the bench -----------------------------------------------------------------------------------


def run(rows: int, keep: bool, verify_incremental: bool) -> Results:
    results = Results("transform", {"rows": rows, "append_rows": max(1, int(rows * APPEND_SHARE))})
    with scratch_dir("transform", keep) as root, environment(data_env(root)):
        import dagster as dg

        from pipeline_assets import settings

        raw_dir = settings.raw_dir()
        filler = RawZoneFiller(raw_dir, settings.topic())
        with Stopwatch() as made:
            fill_in_slices(filler, rows)
        print(f"generated {rows:,} rows into {raw_dir} in {made.seconds:.0f}s", flush=True)

        print("\n== (a) reference SQL", flush=True)
        ref = run_reference(raw_dir, root / "reference.duckdb")
        print(f"   {ref['seconds']:.1f}s", flush=True)
        print("\n== (b) dbt build through Dagster", flush=True)
        instance = dg.DagsterInstance.ephemeral()
        with BuildWatch(settings.duckdb_temp_dir()) as build_watch:
            try:
                full = full_build(instance)
            except Exception:
                print(f"   (b) failed: {build_watch.figures()}", flush=True)
                raise
        print(f"   {full['seconds']:.1f}s", flush=True)
        disk = disk_figures(build_watch, full, raw_dir, settings.warehouse_path())
        check = compare(root / "reference.duckdb", settings.warehouse_path())

        print("\n== (c) incremental: one new day appended, live mode's warm dbt", flush=True)
        from pipeline_assets.live.warm_dbt import WarmDbt

        warm = WarmDbt(root / "warm_dbt")
        warm.manifest  # noqa: B018  (the one parse per process, before the day lands)
        new_day = START + timedelta(days=DAYS)
        filler.write(appended_day(rows), "bench-append")
        inc = warm_day(warm, new_day)
        print(f"   {inc['seconds']:.1f}s", flush=True)
        print("\n== (c2) the same day through a Dagster run (the batch path)", flush=True)
        inc_batch = incremental_build(instance, new_day)
        print(f"   {inc_batch['seconds']:.1f}s", flush=True)
        after = None
        if verify_incremental:
            print("\n== checking the incremental result against the reference on the appended raw zone", flush=True)
            again = run_reference(raw_dir, root / "reference-after.duckdb")
            after = compare(root / "reference-after.duckdb", settings.warehouse_path())
            after["reference_seconds"] = again["seconds"]

        results.add("(a) reference SQL, one DuckDB process", round(ref["seconds"], 1), "s")
        results.add("(b) dbt build through Dagster", round(full["seconds"], 1), "s")
        added = f"+{int(rows * APPEND_SHARE):,} rows on {new_day}"
        for label, run in ((None, full), (f"(c) incremental, {added}: live mode's warm dbt", inc),
                           (f"(c2) incremental, {added}: a Dagster run", inc_batch)):  # fmt: skip
            if label:
                results.add(label, round(run["seconds"], 1), "s")
            for step, seconds in run["steps"].items():
                results.add(f"    step {step}", round(seconds, 1), "s")
            results.add("    dbt node time, models / tests (summed)", f"{run['model_seconds']:.1f} / {run['test_seconds']:.1f}", "s")
        add_disk_figures(results, disk)
        results.ratio("b / a", full["seconds"], ref["seconds"], "<= 2.0")
        results.ratio("c / b", inc["seconds"], full["seconds"], "<= 0.10")
        results.ratio("c2 / b", inc_batch["seconds"], full["seconds"], "<= 0.10")
        results.add("leaderboard of (a) == (b)", "yes" if check["leaderboard_equal"] else "NO", "", "equal", check["leaderboard_equal"])
        other = sum(m["only_reference"] + m["only_dbt"] for m in check["marts"].values())
        results.add("rows differing, all marts (a) vs (b)", other, "rows")
        if after is not None:
            results.add("leaderboard after (c) == reference", "yes" if after["leaderboard_equal"] else "NO", "", "equal",
                        after["leaderboard_equal"])  # fmt: skip
        results.details |= {"reference": ref, "full_build": full, "build_disk": disk, "compare": check, "incremental": inc, "incremental_batch": inc_batch,
                            "compare_after_incremental": after}  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="generated rows in the raw zone")
    parser.add_argument("--verify-incremental", action="store_true",
                        help="re-run the reference after (c) and check the incremental leaderboard against it "
                             "(adds one more reference run)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (raw zone, warehouses)")
    args = parser.parse_args()
    from pipeline_assets import settings

    if settings.engine() != "duckdb":  # it compares the DuckDB warehouse file with its reference SQL
        parser.error(f"this bench is DuckDB-only; unset REDSET_ENGINE (it is {settings.engine()})")
    results = run(args.rows, args.keep, args.verify_incremental)
    results.print_table()
    results.save()


if __name__ == "__main__":
    main()
