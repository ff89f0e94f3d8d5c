"""dbt keeps its partial parse from one invocation to the next of the same profile, while
invocations of other profiles (other warehouses, the freshness check) come in between: each
profile's state is kept apart (warehouse/parse_state.py). A full parse costs seconds of CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dbt_support import dbt_paths

from pipeline_assets import settings
from pipeline_assets.warehouse import parse_state
from pipeline_assets.warehouse.dbt_assets import dbt_env, dbt_resource, dbt_target

FULL_PARSE = "Unable to do partial parsing"


def parse(target_path: Path) -> str:
    """`dbt parse` seeded and kept as the builds do; returns its dbt.log."""
    with parse_state.around(target_path, dbt_target()):
        dbt_resource.cli(["parse", "--quiet", "--target", dbt_target()], target_path=target_path).wait()
    return (target_path / "dbt.log").read_text()


def test_the_profile_key_follows_the_connection_not_the_window(monkeypatch, tmp_path):
    monkeypatch.setenv("REDSET_WAREHOUSE", str(tmp_path / "a.duckdb"))
    first = parse_state.profile_key("dev")
    monkeypatch.setenv("REDSET_MIN_DATE", "2024-03-02")  # read by models, which dbt re-parses alone
    assert parse_state.profile_key("dev") == first
    monkeypatch.setenv("REDSET_DUCKDB_MAX_TEMP", "1 bytes")
    assert parse_state.profile_key("dev") != first
    monkeypatch.delenv("REDSET_DUCKDB_MAX_TEMP")
    monkeypatch.setenv("REDSET_WAREHOUSE", str(tmp_path / "b.duckdb"))
    assert parse_state.profile_key("dev") != first
    assert parse_state.profile_key("spark") != parse_state.profile_key("dev")


def test_the_profile_key_follows_what_the_target_renders_not_every_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("REDSET_WAREHOUSE", str(tmp_path / "a.duckdb"))
    monkeypatch.setenv("REDSET_RAW_DIR", str(tmp_path / "raw"))
    first = parse_state.profile_key("dev")
    # The warehouse is named, so the data folder is not read; a local raw zone is not read either.
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("REDSET_RAW_DIR", str(tmp_path / "other-raw"))
    monkeypatch.setenv("REDSET_SPARK_MASTER", "spark://127.0.0.1:1")  # the spark target's only
    assert parse_state.profile_key("dev") == first
    monkeypatch.setenv("REDSET_RAW_DIR", "s3://redset/raw")  # registers s3fs: another connection
    assert parse_state.profile_key("dev") != first
    monkeypatch.setenv("REDSET_RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.delenv("REDSET_WAREHOUSE")  # now the data folder names the warehouse
    assert parse_state.profile_key("dev") != parse_state.profile_key("dev", {**os.environ, "REDSET_DATA_DIR": "/x"})


@pytest.mark.slow(seconds=40)
def test_a_profile_keeps_its_partial_parse_when_another_profile_parses_between(monkeypatch, tmp_path):
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    with settings.environment(dbt_env(None) | {"REDSET_WAREHOUSE": str(a)}):
        parse(tmp_path / "a1")  # a new profile: a full parse, whatever the state before
    with settings.environment(dbt_env(None) | {"REDSET_WAREHOUSE": str(b)}):
        assert FULL_PARSE in parse(tmp_path / "b1")  # another profile; the project's default state is now b's
    with settings.environment(dbt_env(None) | {"REDSET_WAREHOUSE": str(a)}):
        log = parse(tmp_path / "a2")
    assert FULL_PARSE not in log and "Partial parsing enabled" in log


def test_kept_states_are_pruned_to_the_most_recent(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "DBT_PROJECT_DIR", tmp_path)
    produced = tmp_path / "run"
    produced.mkdir()
    (produced / parse_state.PARTIAL_PARSE_FILE).write_bytes(b"state")
    for i in range(parse_state.KEPT + 3):
        parse_state.keep(produced, f"key{i:02d}")
    kept = sorted(p.stem for p in parse_state.store().glob("*.msgpack"))
    assert len(kept) == parse_state.KEPT and "key00" not in kept and f"key{parse_state.KEPT + 2:02d}" in kept
    assert (tmp_path / "target" / parse_state.PARTIAL_PARSE_FILE).read_bytes() == b"state"


def test_each_test_gets_an_empty_warehouse_under_the_same_profile(monkeypatch, tmp_path):
    # dbt_paths gives every test of a pytest process the same warehouse path, emptied, so the first
    # build of each test keeps dbt's partial parse (a new path is a new profile: a full parse).
    first = dbt_paths(monkeypatch, tmp_path / "a")
    first.warehouse.write_bytes(b"left by the test before")
    first.warehouse.with_name(first.warehouse.name + ".wal").write_bytes(b"")
    key = parse_state.profile_key("dev", os.environ | dbt_env(None))
    second = dbt_paths(monkeypatch, tmp_path / "b")
    assert second.warehouse == first.warehouse and list(second.warehouse.parent.iterdir()) == []
    assert second.raw_dir != first.raw_dir
    assert parse_state.profile_key("dev", os.environ | dbt_env(None)) == key
