"""The Dagster side of the dbt stage, without running dbt: asset graph, sensors, schedule, alerts,
and the dbt project's agreement with pipeline_assets.schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
import yaml

from pipeline_assets import schema, settings
from pipeline_assets.orchestration.definitions import defs
from pipeline_assets.orchestration.jobs import build_marts_job
from pipeline_assets.orchestration.schedules import daily_marts_schedule, latest_complete_day
from pipeline_assets.orchestration.sensors import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    alert_on_run_failure,
    build_marts_on_new_raw_batches,
)
from pipeline_assets.raw import owed_dates
from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models, dbt_env
from pipeline_assets.warehouse.partitions import contiguous_ranges, daily_partitions, partition_for

DBT_TYPES = {
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.string(): "varchar",
    pa.bool_(): "boolean",
    schema.TIMESTAMP: "timestamp",
}
MODELS = {
    "stg_query_deliveries": "staging",
    "stg_queries": "staging",
    "clean_queries": "marts",
    "quarantine_queries": "marts",
    "query_metrics": "marts",
    "compile_metrics": "marts",
    "flattened_table_access": "marts",
    "stress_index": "marts",
    "daily_user_activity": "marts",
    "daily_longest_compiles": "marts",
    "leaderboard": "marts",
    "table_ingest_gaps": "marts",
    "table_workload": "marts",
    "weekly_workload_drift": "marts",
    "tail_concentration": "marts",
}
ALL_TIME = {"leaderboard", "table_ingest_gaps", "table_workload"}
ALL_TIME |= {"weekly_workload_drift", "tail_concentration"}


# --- the dbt project agrees with schema.py --------------------------------------------------


def test_sources_declare_exactly_the_raw_schema():
    sources = yaml.safe_load((settings.DBT_PROJECT_DIR / "models/staging/_sources.yml").read_text())
    tables = {t["name"]: t for t in sources["sources"][0]["tables"]}
    assert set(tables) == {"raw_queries", "landing_queries"}
    expected = [(f.name, DBT_TYPES[f.type]) for f in schema.RAW_SCHEMA] + [(schema.RAW_PARTITION_COLUMN, "date")]
    for name, source in tables.items():
        assert [(c["name"], c["data_type"]) for c in source["columns"]] == expected, name
        assert source["config"]["meta"]["dagster"]["asset_key"] == [name]


def test_dbt_vars_match_schema_lists():
    project = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert tuple(project["vars"]["query_types"]) == schema.QUERY_TYPES
    assert tuple(project["vars"]["ingest_query_types"]) == schema.INGEST_QUERY_TYPES


# --- the asset graph ------------------------------------------------------------------------


def test_models_are_assets_with_bare_keys_groups_and_partitions():
    graph = defs.resolve_asset_graph()
    for model, group in MODELS.items():
        node = graph.get(dg.AssetKey(model))
        assert node.group_name == group, model
        expected_partitions = None if model in ALL_TIME else daily_partitions
        assert node.partitions_def == expected_partitions, model
    # Lineage runs from both raw assets into staging, and on to the leaderboard.
    raw = {dg.AssetKey("raw_queries"), dg.AssetKey("landing_queries")}
    assert graph.get(dg.AssetKey("stg_query_deliveries")).parent_keys == raw
    assert graph.get(dg.AssetKey("stg_queries")).parent_keys == {dg.AssetKey("stg_query_deliveries")}
    assert dg.AssetKey("daily_user_activity") in graph.get(dg.AssetKey("leaderboard")).parent_keys
    # A day's stress index also depends on the day before's clean rows.
    mapping = graph.get(dg.AssetKey("stress_index")).partition_mappings[dg.AssetKey("clean_queries")]
    assert mapping == dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0)


def test_dbt_tests_are_asset_checks_including_the_tie_out():
    checks = {(key.asset_key.path[-1], key.name) for key in defs.resolve_asset_graph().asset_check_keys}
    assert ("clean_queries", "staged_rows_tie_out") in checks
    kinds = {name.split("_")[0] for _, name in checks}
    assert {"not", "unique", "accepted", "relationships"} <= kinds  # not_null, unique, accepted_values, relationships


def test_both_dbt_asset_sets_use_the_duckdb_pool_and_daily_runs_take_ranges():
    assert dbt_daily_models.op.pool == "duckdb"
    assert dbt_all_time_models.op.pool == "duckdb"
    assert dbt_daily_models.backfill_policy == dg.BackfillPolicy.single_run()


def test_partitions_cover_the_span_and_edges_absorb_outliers():
    keys = daily_partitions.get_partition_keys()
    assert keys[0] == settings.span_start().isoformat()
    assert keys[-1] == "2024-05-31"  # span_end is the first day after the span
    assert partition_for(date(2024, 2, 1)) == keys[0]
    assert partition_for(date(2024, 3, 5)) == "2024-03-05"
    assert partition_for(date(2025, 1, 1)) == keys[-1]


def test_dbt_env_for_a_partition_range():
    window = dg.TimeWindow(datetime(2024, 3, 2, tzinfo=timezone.utc), datetime(2024, 3, 5, tzinfo=timezone.utc))
    span = {"REDSET_SPAN_START": "2024-02-29", "REDSET_SPAN_END": "2024-06-01"}
    assert dbt_env(window).items() >= {**span, "REDSET_MIN_DATE": "2024-03-02", "REDSET_MAX_DATE": "2024-03-04"}.items()
    # No window: empty dates (every date), overriding whatever the parent process had set.
    assert dbt_env(None).items() >= {**span, "REDSET_MIN_DATE": "", "REDSET_MAX_DATE": ""}.items()


def test_definitions_validate():
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m", "pipeline_assets.orchestration.definitions"],
        cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


# --- new raw batches -> daily partitions ------------------------------------------------------


def report(instance: dg.DagsterInstance, asset: str, days: list[str]) -> None:
    """A raw batch: the Kafka dump's owed-dates record (written before its commit), or a landing
    file's materialization."""
    if asset == "raw_queries":
        owed_dates.record([date.fromisoformat(d) for d in days], "a-dump-run")
        return
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=asset, metadata={"arrival_dates": dg.MetadataValue.json(days)})
    )


@pytest.fixture
def owed_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    return owed_dates.owed_dir()


def evaluate(instance: dg.DagsterInstance, cursor: str | None):
    return build_marts_on_new_raw_batches(dg.build_sensor_context(instance=instance, cursor=cursor))


def skipped(result: dg.SensorResult) -> str:
    """The skip message of a tick that requested nothing ('' if it requested runs)."""
    return "" if result.run_requests else result.skip_reason.skip_message


def test_contiguous_ranges():
    days = [date(2024, 3, d) for d in (7, 5, 6, 9, 5)]
    assert contiguous_ranges(days) == [(date(2024, 3, 5), date(2024, 3, 7)), (date(2024, 3, 9), date(2024, 3, 9))]


def test_sensor_requests_exactly_the_arrival_dates_of_new_batches(owed_dir: Path):
    with dg.instance_for_test() as instance:
        assert skipped(evaluate(instance, None))

        report(instance, "raw_queries", ["2024-03-05"])
        first = evaluate(instance, None)
        assert [r.partition_key for r in first.run_requests] == ["2024-03-05"]

        # Two batches of the raw dump and one landing file between two ticks: one tick requests
        # them all, a run per stretch of consecutive days; a date before the span goes to the
        # first partition (which takes everything earlier).
        report(instance, "raw_queries", ["2024-03-06", "2024-03-07"])
        report(instance, "raw_queries", ["2024-03-07", "2024-03-10"])
        report(instance, "landing_queries", ["2024-02-10"])
        second = evaluate(instance, first.cursor)
        got = [(r.partition_key, r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG)) for r in second.run_requests]
        assert got == [
            ("2024-02-29", None, None),
            (None, "2024-03-06", "2024-03-07"),
            ("2024-03-10", None, None),
        ]
        assert len({r.run_key for r in first.run_requests + second.run_requests}) == 4

        # Nothing new: nothing requested, even from the same cursor twice; the records the
        # saved cursor holds are settled.
        assert skipped(evaluate(instance, second.cursor))
        assert skipped(evaluate(instance, second.cursor))
        assert not list(owed_dir.glob("*.json"))


def test_sensor_holds_dates_while_a_build_is_in_flight(owed_dir: Path):
    with dg.instance_for_test() as instance:
        report(instance, "raw_queries", ["2024-03-05"])
        first = evaluate(instance, None)
        assert [r.partition_key for r in first.run_requests] == ["2024-03-05"]

        # Its run is going; two more batches land meanwhile: nothing requested, nothing lost.
        build = dg.DagsterRun(job_name=build_marts_job.name, run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
        instance.add_run(build)
        report(instance, "raw_queries", ["2024-03-06"])
        held = evaluate(instance, first.cursor)
        assert build.run_id in skipped(held)
        report(instance, "raw_queries", ["2024-03-07", "2024-03-09"])
        held_again = evaluate(instance, held.cursor)
        assert "3 arrival date(s)" in skipped(held_again)

        # The build is over: every held date in one tick, one run per stretch of days.
        instance.delete_run(build.run_id)
        released = evaluate(instance, held_again.cursor)
        got = [(r.partition_key, r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG)) for r in released.run_requests]
        assert got == [(None, "2024-03-06", "2024-03-07"), ("2024-03-09", None, None)]
        assert skipped(evaluate(instance, released.cursor))


def test_sensor_skips_malformed_dates_and_keeps_going(owed_dir: Path):
    with dg.instance_for_test() as instance:
        report(instance, "landing_queries", ["not-a-date", "2024-03-05"])
        result = evaluate(instance, None)
        assert [r.partition_key for r in result.run_requests] == ["2024-03-05"]


# --- the daily schedule -----------------------------------------------------------------------


def test_schedule_builds_the_day_before_the_newest_arrival_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDSET_RAW_DIR", str(tmp_path))
    # The context enters the instance: exit it too, or the instance's state storage stays current
    # for later tests after the instance is gone.
    with dg.instance_for_test() as instance, dg.build_schedule_context(instance=instance) as context:
        assert isinstance(daily_marts_schedule(context), dg.SkipReason)

        for day, name in [("2024-03-04", "t-p0-o0-9.parquet"), ("2024-03-05", "t-p0-o10-19.parquet"), ("2024-03-06", ".tmp-x.parquet.tmp")]:
            folder = tmp_path / f"arrival_date={day}"
            folder.mkdir()
            (folder / name).write_bytes(b"")
        # 2024-03-06 holds only a file being written: the newest published day is 03-05, still filling.
        assert latest_complete_day(tmp_path) == date(2024, 3, 4)
        request = daily_marts_schedule(context)
        assert request.partition_key == "2024-03-04"


# --- run failures -> alert log and webhook ----------------------------------------------------


@dg.op
def explode():
    raise RuntimeError("boom\nsecond line")


@dg.job
def failing_job():
    explode()


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep the test output quiet
        pass


def test_run_failure_writes_an_alert_line_and_posts_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("REDSET_ALERT_LOG", str(tmp_path / "alerts.log"))
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    try:
        with dg.instance_for_test() as instance:
            result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
            context = dg.build_run_status_sensor_context(
                sensor_name="alert_on_run_failure",
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=result.get_run_failure_event(),
            ).for_run_failure()
            alert_on_run_failure(context)
    finally:
        server.shutdown()

    [line] = (tmp_path / "alerts.log").read_text().splitlines()
    assert f"RUN FAILURE job=failing_job run_id={result.run_id}" in line
    [payload] = _Receiver.received
    assert payload["event"] == "run_failure"
    assert payload["job"] == "failing_job"
    assert payload["run_id"] == result.run_id
    assert "explode" in payload["message"]


@pytest.mark.slow
def test_importing_the_code_location_without_a_manifest_writes_one_with_every_model(tmp_path):
    # `make dbt-parse`'s command, in a copy of the project that has no target/ folder at all.
    project = tmp_path / "dbt_project"
    shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb*"))
    code = (
        "from pathlib import Path; from pipeline_assets import settings; "
        f"settings.DBT_PROJECT_DIR = Path({str(project)!r}); import pipeline_assets.warehouse.dbt_assets"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    manifest = json.loads((project / "target" / "manifest.json").read_text())
    parsed = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert parsed == {path.stem for path in (project / "models").rglob("*.sql")}


# --- the all-time marts follow the daily partitions ----------------------------------------------


def test_all_time_marts_wait_for_a_daily_update():
    dbt_assets = dg.AssetSelection.assets(dbt_daily_models, dbt_all_time_models)

    def tick(instance, cursor=None):
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=dbt_assets, cursor=cursor)

    with dg.instance_for_test() as instance:
        # Nothing built yet: nothing to do (the daily tables they read do not exist).
        result = tick(instance)
        assert result.total_requested == 0

        # One daily partition of one of their inputs changes: the marts reading it (leaderboard's
        # top users and tail_concentration's user totals), once each.
        instance.report_runless_asset_event(dg.AssetMaterialization("daily_user_activity", partition="2024-03-05"))
        result = tick(instance, result.cursor)
        assert result.total_requested == 2
        assert result.get_num_requested(dg.AssetKey("leaderboard")) == 1
        assert result.get_num_requested(dg.AssetKey("tail_concentration")) == 1
        assert tick(instance, result.cursor).total_requested == 0
