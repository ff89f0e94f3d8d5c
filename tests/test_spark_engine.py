"""One dbt project, two engines: every mart built on Spark equals DuckDB's, row for row.

    generated rows -> real Kafka broker -> raw dump -> raw zone
        -> dbt build (DuckDB)  and  dbt build --target spark (a real standalone cluster: a master
           and two workers, 1 core and 512 MB each, executors in the workers' JVMs)
        -> every relation compared: same columns, keys exact, floats to a relative 1e-9
        -> one day rebuilt as a partition run on both engines, after new rows arrived for it
           (landing files, with re-deliveries), and compared again.

The rows are few (every relation still gets rows, quarantine included, and the test says so):
what could differ between the engines is the SQL's meaning, which a few thousand rows of every
shape check as well as fifty thousand; on Spark each model and each dbt test costs seconds of
planning and scheduling whatever the volume.

Spark runs dbt in this process (dbtRunner), so the comparison reads the tables through the same
SparkSession without starting another JVM. dbt-spark 1.11 forces spark.sql.ansi.enabled=false on
every statement; pipeline_assets/spark/ansi.py takes the override out (as Dagster's `redset-dbt` does
on Spark), so the build runs with Spark 4's default ANSI mode and shows the SQL is valid under it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
from dbt_support import dbt_paths
from engine_compare import contract_differences, differences

from pipeline_assets import settings
from pipeline_assets.kafka import producer
from pipeline_assets.source import generator

pytestmark = [pytest.mark.kafka, pytest.mark.slow(seconds=160), pytest.mark.timeout(1800)]

ROWS = 3_000
DAYS = 5
START = date(2024, 3, 1)
REBUILT_DAY = "2024-03-03"
LATE_ROWS = 300
REDELIVERED = 20  # rows of the rebuilt day that arrive again in the late landing file
BROKEN = {"execution_duration_ms": -5, "query_type": "merge"}  # each breaks a rule: quarantined


@contextmanager
def dbt_duckdb(tmp_path: Path, *args: str) -> Iterator[None]:
    """dbt on the default (DuckDB) target, as a CLI process running while the block runs (the Spark
    build: the engines share only the raw zone, which both read), then waited for."""
    project = str(settings.DBT_PROJECT_DIR)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dbt")), *args, "--quiet", "--project-dir", project, "--profiles-dir", project,
         "--target-path", str(tmp_path / "target-duckdb"), "--log-path", str(tmp_path / "logs-duckdb")],
        cwd=project, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    out, err = proc.communicate()
    assert proc.returncode == 0, f"dbt {args} on DuckDB failed:\n{out[-4000:]}\n{err[-2000:]}"


def dbt_spark(tmp_path: Path, *args: str) -> None:
    """dbt on the spark target, in this process."""
    from dbt.cli.main import dbtRunner

    project = str(settings.DBT_PROJECT_DIR)
    result = dbtRunner().invoke([
        *args, "--target", "spark", "--project-dir", project, "--profiles-dir", project,
        "--target-path", str(tmp_path / "target-spark"), "--log-path", str(tmp_path / "logs-spark"),
    ])  # fmt: skip
    failed = [f"{r.node.name}: {r.status} {r.message}" for r in (result.result or []) if r.status in ("error", "fail")]
    assert result.success, f"dbt {args} on Spark failed: {failed or result.exception}"


def duckdb_relations(warehouse: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        names = [r[0] for r in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()]
        out = {}
        for name in names:
            cursor = connection.execute(f"select * from {name}")
            out[name] = ([d[0] for d in cursor.description], cursor.fetchall())
        return out


def spark_relations(schema: str) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every relation dbt built on Spark (the raw zone's external tables left out), timestamps
    read as UTC wall-clock time like DuckDB's."""
    from pyspark.sql import SparkSession
    from pyspark.sql.types import TimestampType

    spark = SparkSession.builder.getOrCreate()
    out = {}
    for row in spark.sql(f"show tables in {schema}").collect():
        if row.isTemporary or row.tableName.startswith("raw_zone_"):
            continue
        frame = spark.table(f"{schema}.{row.tableName}")
        frame = frame.selectExpr(*[
            f"cast(`{f.name}` as timestamp_ntz) as `{f.name}`" if isinstance(f.dataType, TimestampType) else f"`{f.name}`"
            for f in frame.schema.fields
        ])  # fmt: skip
        out[row.tableName] = (frame.columns, [tuple(r) for r in frame.collect()])
    return out


def spark_columns(schema: str) -> dict[str, dict[str, str]]:
    """{table: {column: Spark type}} of every table dbt built on Spark."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    tables = [r.tableName for r in spark.sql(f"show tables in {schema}").collect() if not r.isTemporary]
    return {t: {f.name: f.dataType.simpleString() for f in spark.table(f"{schema}.{t}").schema.fields} for t in tables}


def compare(duck: dict, spark: dict) -> list[str]:
    assert sorted(spark) == sorted(duck), "the engines built different relations"
    assert [name for name, (_, rows) in sorted(duck.items()) if not rows] == [], "empty relations compare nothing"
    return [d for name in sorted(duck) for d in differences(name, duck[name], spark[name])]


def with_broken_rows(rows: pa.Table, every: int) -> tuple[pa.Table, int]:
    """`rows` with every `every`-th row breaking one of the clean step's rules (BROKEN, in turn)."""
    records = rows.to_pylist()
    broken = 0
    for i in range(every // 2, len(records), every):
        column, value = list(BROKEN.items())[broken % len(BROKEN)]
        records[i] = dict(records[i], **{column: value})
        broken += 1
    return pa.Table.from_pylist(records, schema=rows.schema), broken


def keys(rows) -> set[tuple]:
    return {(r["deployment"], r["instance_id"], r["query_id"]) for r in rows}


def test_spark_marts_equal_duckdb(kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch) -> None:
    from dbt.adapters.spark.connections import SparkCredentials
    from pyspark.sql import SparkSession
    from serving_pipeline import write_raw_zone

    from pipeline_assets.kafka.resource import KafkaResource
    from pipeline_assets.raw.dump.asset import raw_queries
    from pipeline_assets.spark.ansi import keep_ansi_mode
    from pipeline_assets.spark.cluster import start_cluster

    paths = dbt_paths(monkeypatch, tmp_path)
    monkeypatch.setenv("REDSET_TOPIC", kafka_topic)
    monkeypatch.setenv("REDSET_CONSUMER_GROUP", f"test-spark-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("REDSET_SPARK_WAREHOUSE", str(tmp_path / "spark-warehouse"))
    monkeypatch.setenv("REDSET_SPARK_METASTORE", str(tmp_path / "spark-metastore"))
    # JVMs that live for two builds of a few thousand rows: C1 alone warms up faster than it loses;
    # the serial collector spends less CPU than G1 on heaps this small; the throwaway metastore's
    # Derby skips its fsyncs (~10 % less CPU for the driver and executors, measured under load).
    monkeypatch.setenv("REDSET_SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dderby.system.durability=test")
    monkeypatch.delenv("REDSET_MIN_DATE", raising=False)
    monkeypatch.delenv("REDSET_MAX_DATE", raising=False)
    monkeypatch.setattr(SparkCredentials, "__post_init__", SparkCredentials.__post_init__)  # restored afterwards
    keep_ansi_mode()  # what `redset-dbt` (Dagster's dbt on Spark) does

    rows, broken = with_broken_rows(generator.generate(ROWS, seed=23, deployment="both", start=START, days=DAYS), 500)
    generator.write(rows, tmp_path / "generated.parquet")
    stats = producer.produce(tmp_path / "generated.parquet", kafka_topic, bootstrap=kafka_broker, progress=False)
    assert (stats.rows, stats.errors) == (ROWS, 0)
    with dg.instance_for_test() as instance:
        assert dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=instance).success

    cluster = start_cluster(tmp_path / "spark", workers=2, worker_cores=1, worker_memory="512m")
    try:
        monkeypatch.setenv("REDSET_SPARK_MASTER", cluster.master_url)
        with dbt_duckdb(tmp_path, "build"):
            dbt_spark(tmp_path, "build")
        spark = SparkSession.builder.getOrCreate()
        assert spark.sparkContext.master == cluster.master_url
        assert spark.conf.get("spark.sql.ansi.enabled") == "true"
        duck = duckdb_relations(paths.warehouse)
        assert (len(duck["clean_queries"][1]), len(duck["quarantine_queries"][1])) == (ROWS - broken, broken)
        assert compare(duck, spark_relations("redset")) == []
        # dbt does not enforce the served models' contracts on Spark: the tables match them anyway.
        manifest = json.loads((tmp_path / "target-spark" / "manifest.json").read_text())
        assert contract_differences(manifest, spark_columns("redset")) == []

        # Late rows for one day (some re-deliveries of known queries), then that day's partition run.
        late = generator.generate(LATE_ROWS, seed=24, deployment="both", start=date.fromisoformat(REBUILT_DAY), days=1)
        clean = keys(dict(zip(duck["clean_queries"][0], r)) for r in duck["clean_queries"][1])
        again = [r for r in rows.to_pylist()
                 if r["arrival_timestamp"].date().isoformat() == REBUILT_DAY and keys([r]) <= clean][:REDELIVERED]
        late = pa.concat_tables([late, pa.Table.from_pylist(again, schema=rows.schema)])
        write_raw_zone(late, paths.raw_dir, "late.parquet")
        new_keys = keys(late.to_pylist()) - clean
        assert len(again) == REDELIVERED and len(new_keys) > LATE_ROWS // 2
        monkeypatch.setenv("REDSET_MIN_DATE", REBUILT_DAY)
        monkeypatch.setenv("REDSET_MAX_DATE", REBUILT_DAY)
        with dbt_duckdb(tmp_path, "build", "--select", "tag:daily"):
            dbt_spark(tmp_path, "build", "--select", "tag:daily")
        rebuilt = duckdb_relations(paths.warehouse)
        # The new queries were added, the re-deliveries were not (clean keeps the first delivery).
        assert len(rebuilt["clean_queries"][1]) == len(clean) + len(new_keys), "the partition run did not rebuild the day"
        assert compare(rebuilt, spark_relations("redset")) == []
    finally:
        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()
        cluster.stop()
