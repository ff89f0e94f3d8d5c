"""REDSET_ENGINE=duckdb|spark: the setting, the dbt target and environment it gives dbt, the
warehouse the readers open, and a missing Spark master caught before dbt starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline_assets import settings
from pipeline_assets.runtime.ports import free_ports
from pipeline_assets.spark import ClusterError, require_master
from pipeline_assets.warehouse import dbt_assets as dbt
from pipeline_assets.warehouse.resource import warehouse_resource


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "REDSET_ENGINE", "REDSET_SPARK_MASTER", "REDSET_SPARK_PORT", "REDSET_SPARK_WAREHOUSE",
        "REDSET_SPARK_METASTORE", "REDSET_SPARK_SCHEMA", "REDSET_SPARK_WORKER_MEMORY",
        "REDSET_SPARK_EXECUTOR_MEMORY", "REDSET_SPARK_DRIVER_HOST", "REDSET_SPARK_DRIVER_BIND_ADDRESS", "REDSET_WAREHOUSE",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))


def test_engine_defaults_to_duckdb_and_accepts_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.engine() == "duckdb"
    monkeypatch.setenv("REDSET_ENGINE", " Spark ")
    assert settings.engine() == "spark"


def test_a_bad_engine_names_the_variable_and_the_allowed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_ENGINE", "postgres")
    with pytest.raises(ValueError, match=r"REDSET_ENGINE='postgres'.*allowed values: duckdb, spark"):
        settings.engine()
    with pytest.raises(ValueError, match="REDSET_ENGINE"):
        dbt.build_args(full_refresh=False)


def test_the_engine_picks_the_dbt_target(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dbt.build_args(full_refresh=False) == ["build", "--target", "dev"]
    monkeypatch.setenv("REDSET_ENGINE", "spark")
    assert dbt.build_args(full_refresh=True) == ["build", "--target", "spark", "--full-refresh"]


def test_dbt_gets_the_spark_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = dbt.dbt_env(None)
    assert env["REDSET_SPARK_MASTER"] == "spark://127.0.0.1:7077"
    assert env["REDSET_SPARK_WAREHOUSE"] == str(tmp_path / "spark-warehouse")
    assert env["REDSET_SPARK_METASTORE"] == str(tmp_path / "spark-metastore")
    assert env["REDSET_SPARK_SCHEMA"] == "redset"
    assert env["REDSET_SPARK_EXECUTOR_MEMORY"] == "512m"
    assert env["REDSET_SPARK_DRIVER_HOST"] == env["REDSET_SPARK_DRIVER_BIND_ADDRESS"] == "127.0.0.1"

    monkeypatch.setenv("REDSET_SPARK_PORT", "7111")
    monkeypatch.setenv("REDSET_SPARK_WORKER_MEMORY", "2g")
    env = dbt.dbt_env(None)
    assert env["REDSET_SPARK_MASTER"] == "spark://127.0.0.1:7111"
    assert env["REDSET_SPARK_EXECUTOR_MEMORY"] == "2g"  # an executor takes all its worker offers
    monkeypatch.setenv("REDSET_SPARK_MASTER", "spark://10.0.0.5:7077")
    monkeypatch.setenv("REDSET_SPARK_WAREHOUSE", str(tmp_path / "elsewhere"))
    env = dbt.dbt_env(None)
    assert env["REDSET_SPARK_MASTER"] == "spark://10.0.0.5:7077"
    assert env["REDSET_SPARK_WAREHOUSE"] == str(tmp_path / "elsewhere")


def test_the_readers_open_the_engines_warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert warehouse_resource().path == tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("REDSET_ENGINE", "spark")
    assert warehouse_resource().path == tmp_path / "spark-warehouse"
    # An explicit DuckDB file stays one, whatever the engine.
    assert warehouse_resource(tmp_path / "x.duckdb").path == tmp_path / "x.duckdb"


def test_a_missing_master_fails_at_once_saying_what_to_run() -> None:
    (port,) = free_ports(1)
    with pytest.raises(ClusterError, match=rf"spark://127.0.0.1:{port}.*redset spark start"):
        require_master(f"spark://127.0.0.1:{port}")
    require_master("local[2]")  # nothing to reach
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        require_master(f"spark://127.0.0.1:{listening.getsockname()[1]}")


def test_on_spark_dagster_runs_the_dbt_that_keeps_ansi_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    assert Path(dbt.dbt_executable()).name == "dbt"
    monkeypatch.setenv("REDSET_ENGINE", "spark")
    executable = dbt.dbt_executable()
    assert Path(executable).name == "redset-dbt" and Path(executable).exists()
    # dbt-spark's own credentials, built in the process `redset-dbt` gives dbt: its forced
    # `ansi.enabled=false` is gone, one set in the profile stays.
    code = """
from pipeline_assets.spark.ansi import keep_ansi_mode
keep_ansi_mode()
from dbt.adapters.spark.connections import SparkCredentials as C
print(C(method='session', host='h', schema='s', database=None, server_side_parameters={'spark.master': 'x'}).server_side_parameters)
print(C(method='session', host='h', schema='s', database=None, server_side_parameters={'spark.sql.ansi.enabled': 'false'}).server_side_parameters)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["{'spark.master': 'x'}", "{'spark.sql.ansi.enabled': 'false'}"]
    version = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    assert "spark" in version  # dbt's own CLI, with the Spark adapter
