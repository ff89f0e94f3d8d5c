"""DuckDB's limits for the dbt build: the settings, the early refusal, and the spill cap's error.

The builds here are real dbt runs through Dagster on a private warehouse; the cap test makes DuckDB
spill with a tiny memory_limit and stops it at a tiny max_temp_directory_size.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime

import dagster as dg
import pytest
from dbt_support import RANGE_END_TAG, RANGE_START_TAG, dbt_paths, kafka_rows, write_raw_file

from pipeline_assets import schema, settings
from pipeline_assets.source import generator
from pipeline_assets.warehouse import duckdb_limits


def test_sizes_parse_in_duckdb_units():
    assert duckdb_limits.parse_size("40GB") == 40 * 10**9
    assert duckdb_limits.parse_size("1.5 GiB") == 3 * 2**29
    assert duckdb_limits.parse_size("512MiB") == 512 * 2**20
    assert duckdb_limits.parse_size("1073741824 bytes") == 2**30
    with pytest.raises(ValueError, match="REDSET_DUCKDB_MAX_TEMP must be a size like '40GB'.*'lots'"):
        duckdb_limits.parse_size("lots")
    with pytest.raises(ValueError, match="'50%'"):  # DuckDB takes no percentage for this one
        duckdb_limits.parse_size("50%")


def test_defaults_come_from_the_machine(tmp_path, monkeypatch):
    for name in ("REDSET_DUCKDB_THREADS", "REDSET_DUCKDB_MEMORY_LIMIT", "REDSET_DUCKDB_MAX_TEMP", "REDSET_DUCKDB_TEMP_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDSET_WAREHOUSE", str(tmp_path / "w" / "warehouse.duckdb"))
    free = shutil.disk_usage(tmp_path).free
    cap = duckdb_limits.check_temp_space()
    # Half the free disk in whole GiB (others write meanwhile): the profile stays the same across builds.
    assert free // 2 - 2**30 - 2**28 < cap <= free // 2 + 2**28 and cap % 2**30 == 0
    env = duckdb_limits.dbt_env(cap)
    assert env == {
        "REDSET_DUCKDB_THREADS": str(os.cpu_count()),
        "REDSET_DUCKDB_MEMORY_LIMIT": "60%",
        "REDSET_DUCKDB_MAX_TEMP": f"{cap} bytes",
        "REDSET_DUCKDB_TEMP_DIR": str(tmp_path / "w" / "warehouse.duckdb.tmp"),  # DuckDB's own default place
    }


def test_a_cap_the_disk_cannot_hold_is_refused_with_the_folder_and_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("REDSET_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    monkeypatch.setenv("REDSET_DUCKDB_MAX_TEMP", "1000TB")
    with pytest.raises(duckdb_limits.TempSpaceError) as caught:
        duckdb_limits.check_temp_space()
    message = str(caught.value)
    assert str(tmp_path / "spill") in message and "REDSET_DUCKDB_MAX_TEMP" in message
    free = int(message.split(" has ")[1].split(" bytes")[0].replace(",", ""))
    assert abs(free - shutil.disk_usage(tmp_path).free) < 2**28
    # A cap that fits, with the reserve beside it, is granted as given.
    monkeypatch.setenv("REDSET_DUCKDB_MAX_TEMP", "100MB")
    assert duckdb_limits.check_temp_space() == 100 * 10**6


def test_a_killed_duckdbs_spill_is_removed_from_the_warehouses_own_temp_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("REDSET_DUCKDB_TEMP_DIR", raising=False)
    monkeypatch.setenv("REDSET_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    folder = tmp_path / "warehouse.duckdb.tmp"
    folder.mkdir()
    for name in ("duckdb_temp_17555_0_owner", "duckdb_temp_17555_0_storage_DEFAULT-0.tmp"):
        (folder / name).write_bytes(b"x" * 1000)
    (folder / "notes.txt").write_text("not DuckDB's")
    assert duckdb_limits.clear_stale_spill() == 2000
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    # A folder the user named may be shared with other DuckDBs: left alone.
    monkeypatch.setenv("REDSET_DUCKDB_TEMP_DIR", str(folder))
    (folder / "duckdb_temp_1_0_owner").write_bytes(b"x")
    assert duckdb_limits.clear_stale_spill() == 0
    assert (folder / "duckdb_temp_1_0_owner").exists()


def _failed_build(days: tuple[str, str]) -> list:
    """The errors, outermost first, of a daily dbt run over `days` that must fail."""
    from pipeline_assets.warehouse.dbt_assets import dbt_daily_models, dbt_resource

    with dg.instance_for_test() as instance:
        result = dg.materialize([dbt_daily_models], tags={RANGE_START_TAG: days[0], RANGE_END_TAG: days[1]},
                                resources={"dbt": dbt_resource}, instance=instance, raise_on_error=False)  # fmt: skip
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    chain = [error]
    while chain[-1].cause is not None:  # Dagster wraps an op's exception, ours wraps dbt's
        chain.append(chain[-1].cause)
    return chain


def _raw_rows(paths, n: int) -> None:
    rows = generator.generate(rows=n, seed=5, deployment="both", start=datetime(2024, 3, 1).date(), days=2)
    rows = rows.select(list(schema.COLUMN_NAMES)).to_pylist()
    write_raw_file(paths.raw_dir, kafka_rows(rows, 0, "b1", datetime(2024, 3, 3)), "topic-p0-o0.parquet")


def test_the_profile_hands_the_settings_to_duckdb(tmp_path, monkeypatch):
    from pipeline_assets.warehouse.dbt_assets import dbt_env, dbt_resource

    paths = dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv("REDSET_DUCKDB_THREADS", "1")
    monkeypatch.setenv("REDSET_DUCKDB_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("REDSET_DUCKDB_TEMP_DIR", str(tmp_path / "spill"))
    names = "'threads', 'memory_limit', 'max_temp_directory_size', 'temp_directory', 'preserve_insertion_order'"
    sql = f"select name, value from duckdb_settings() where name in ({names})"
    with settings.environment(dbt_env(None) | duckdb_limits.dbt_env(300 * 2**20)):
        invocation = dbt_resource.cli(["show", "--inline", sql, "--output", "json", "--log-format", "json"])
        shown = [e for e in invocation.stream_raw_events() if e.raw_event["info"]["name"] == "ShowNode"]
    rows = json.loads(shown[0].raw_event["data"]["preview"])
    assert {r["name"]: r["value"] for r in rows} == {
        "threads": "1",
        "memory_limit": "667.5 MiB",  # 700 MB
        "max_temp_directory_size": "300.0 MiB",
        "temp_directory": str(tmp_path / "spill"),
        "preserve_insertion_order": "false",
    }
    assert paths.warehouse.exists()


def test_a_build_without_room_for_the_cap_fails_before_dbt_starts(tmp_path, monkeypatch):
    paths = dbt_paths(monkeypatch, tmp_path)
    _raw_rows(paths, 50)
    monkeypatch.setenv("REDSET_DUCKDB_MAX_TEMP", "1000TB")
    failure = _failed_build(("2024-03-01", "2024-03-01"))[-1]
    assert failure.cls_name == "TempSpaceError" and "REDSET_DUCKDB_MAX_TEMP" in failure.message
    assert str(paths.warehouse.with_name("warehouse.duckdb.tmp")) in failure.message
    assert not paths.warehouse.exists()  # dbt never ran


def test_a_build_that_outgrows_the_cap_stops_with_the_setting_named(tmp_path, monkeypatch):
    paths = dbt_paths(monkeypatch, tmp_path)
    _raw_rows(paths, 100_000)
    spill = tmp_path / "spill"
    monkeypatch.setenv("REDSET_DUCKDB_TEMP_DIR", str(spill))
    monkeypatch.setenv("REDSET_DUCKDB_THREADS", "1")
    monkeypatch.setenv("REDSET_DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("REDSET_DUCKDB_MAX_TEMP", "1MB")
    failure, dbt_error = _failed_build(("2024-03-01", "2024-03-02"))
    assert failure.cls_name == "Failure"
    assert failure.message.startswith("dagster._core.definitions.events.Failure: DuckDB's spill reached its cap of 1,000,000 bytes")
    assert "REDSET_DUCKDB_MAX_TEMP" in failure.message and str(spill) in failure.message
    assert "max_temp_directory_size" in failure.message  # DuckDB's own words follow ours
    assert dbt_error.cls_name == "DagsterDbtCliRuntimeError"
    assert duckdb_limits.parse_size("1MB") >= sum(p.stat().st_size for p in spill.rglob("*") if p.is_file())
