"""The Spark engine's tables read without Spark (pipeline_assets/spark/tables.py), against tables a
real SparkSession wrote (local mode, hive catalog, as dbt-spark's `spark` output writes them): the
serving snapshot on REDSET_ENGINE=spark, and the forecast tables written back for Spark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline_assets.insights import forecast_asset
from pipeline_assets.serving import publishes, snapshot
from pipeline_assets.spark import tables as spark_tables

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Tables shaped like the marts: query_metrics partitioned by arrival_date (a daily model),
# leaderboard unpartitioned with a timestamp, table_ingest_gaps unpartitioned and empty,
# compile_metrics partitioned and empty, and a view. And Spark reads the forecast asset's folder.
WRITER = """
import json, sys
from pyspark.sql import SparkSession
warehouse, metastore = sys.argv[1:3]
spark = (
    SparkSession.builder.master("local[1]").appName("redset-tables-test")
    .config("spark.sql.warehouse.dir", warehouse)
    .config("spark.sql.catalogImplementation", "hive")
    .config("spark.hadoop.javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={metastore}/metastore_db;create=true")
    .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={metastore}")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sql("CREATE DATABASE redset")
spark.sql('''CREATE TABLE redset.query_metrics USING parquet PARTITIONED BY (arrival_date) AS
    SELECT IF(id % 2 = 0, 'provisioned', 'serverless') AS deployment, id AS instance_id,
           CAST(id * 10 AS BIGINT) AS queries, CAST(id * 9 AS BIGINT) AS successful, CAST(id AS BIGINT) AS aborted,
           CAST(id % 3 AS BIGINT) AS cached, id * 1.5D AS mbytes_scanned, id * 0.25D AS mbytes_spilled,
           CAST(id AS BIGINT) AS joins, CAST(2 * id AS BIGINT) AS aggregations, CAST(3 * id AS BIGINT) AS scans,
           DATE'2024-03-01' + CAST(id % 3 AS INT) AS arrival_date
    FROM range(1, 13)''')
spark.sql('''CREATE TABLE redset.leaderboard USING parquet AS
    SELECT 'provisioned' AS deployment, CAST(7 AS BIGINT) AS instance_id,
           TIMESTAMP'2024-03-01 23:30:00' AS last_seen, 0.125D AS share''')
spark.sql("CREATE TABLE redset.table_ingest_gaps USING parquet AS SELECT CAST(1 AS BIGINT) AS table_id, 'x' AS note WHERE false")
spark.sql('''CREATE TABLE redset.compile_metrics USING parquet PARTITIONED BY (arrival_date) AS
    SELECT CAST(1 AS BIGINT) AS queries, DATE'2024-03-01' AS arrival_date WHERE false''')
spark.sql("CREATE VIEW redset.stg_view AS SELECT * FROM redset.leaderboard")
rows = spark.sql("SELECT * FROM redset.query_metrics").collect()
# A folder the forecast asset wrote without Spark, read by path (not in the metastore).
backtest = spark.read.parquet(f"{warehouse}/redset.db/forecast_backtest")
print(json.dumps({
    "query_metrics": [[r[c] if not hasattr(r[c], "isoformat") else r[c].isoformat() for c in r.__fields__] for r in rows],
    "forecast_backtest": {"rows": backtest.count(), "columns": backtest.columns},
}))
"""


BACKTESTS = pd.DataFrame(
    {"deployment": ["provisioned", "serverless"], "instance_id": [1, 2], "metric": ["queries"] * 2,
     "model": ["naive", "ets"], "mase": [0.5, 1.25], "smape": [10.0, 20.0], "origins": [14, 14]}
)  # fmt: skip
FORECASTS = pd.DataFrame(
    {"deployment": ["provisioned"], "instance_id": [1], "hour": [pd.Timestamp("2024-03-02 01:00")],
     "metric": ["queries"], "model": ["naive"], "forecast": [3.0], "lower": [1.0], "upper": [5.0]}
)  # fmt: skip


@pytest.fixture(scope="module")
def spark_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("spark")
    warehouse, metastore = root / "spark-warehouse", root / "spark-metastore"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDSET_ENGINE", "spark")
        mp.setenv("REDSET_SPARK_WAREHOUSE", str(warehouse))
        mp.delenv("REDSET_SPARK_SCHEMA", raising=False)
        history = FORECASTS.assign(origin=pd.Timestamp("2024-03-02 00:00")).iloc[:0]
        for _ in range(2):  # a rerun replaces, never appends
            forecast_asset.write_spark_tables(FORECASTS, BACKTESTS, history)
    result = subprocess.run(
        [sys.executable, "-c", WRITER, str(warehouse), str(metastore)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # An unfinished write's leftovers, which no reader may take for data.
    junk = warehouse / "redset.db" / "query_metrics" / "_temporary" / "0" / "part-00000.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not parquet")
    return warehouse, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def spark_engine(monkeypatch: pytest.MonkeyPatch, spark_warehouse: tuple[Path, dict]) -> Path:
    monkeypatch.setenv("REDSET_ENGINE", "spark")
    monkeypatch.setenv("REDSET_SPARK_WAREHOUSE", str(spark_warehouse[0]))
    monkeypatch.delenv("REDSET_SPARK_SCHEMA", raising=False)
    return spark_warehouse[0]


def test_the_folder_layout_is_the_one_agreed(spark_warehouse: tuple[Path, dict]) -> None:
    schema = spark_warehouse[0] / "redset.db"
    assert sorted(p.name for p in (schema / "query_metrics").iterdir() if p.name.startswith("arrival_date=")) == [
        "arrival_date=2024-03-01", "arrival_date=2024-03-02", "arrival_date=2024-03-03",
    ]  # fmt: skip
    assert spark_tables.parquet_files(schema / "compile_metrics") == []  # no rows, no file
    assert sorted(spark_tables.tables(spark_warehouse[0], "redset")) == [
        "forecast_backtest", "forecast_history", "leaderboard", "query_metrics", "table_ingest_gaps", "workload_forecasts",
    ]  # fmt: skip


def test_views_read_the_tables_as_spark_wrote_them(spark_engine: Path, spark_warehouse: tuple[Path, dict]) -> None:
    with spark_tables.connect(spark_engine, "redset") as con:
        got = con.execute("SELECT * FROM main.query_metrics ORDER BY instance_id").fetchall()
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'leaderboard'").fetchall())
        last_seen = con.execute("SELECT last_seen FROM main.leaderboard").fetchone()[0]
    expected = sorted(spark_warehouse[1]["query_metrics"], key=lambda r: r[1])
    assert [list(r[:-1]) + [r[-1].isoformat()] for r in got] == expected
    assert isinstance(got[0][-1], date)  # the Hive folder's value, typed
    assert types["last_seen"] == "TIMESTAMP" and last_seen == datetime(2024, 3, 1, 23, 30)


def test_the_snapshot_publishes_from_the_spark_warehouse(spark_engine: Path, tmp_path: Path) -> None:
    pub = snapshot.publish(serving_dir=tmp_path)
    assert pub.rows["query_metrics"] == 12 and pub.rows["leaderboard"] == 1 and pub.rows["table_ingest_gaps"] == 0
    assert "compile_metrics" in pub.missing and "query_metrics" not in pub.missing
    manifest = snapshot.read_manifest(tmp_path)
    assert manifest["warehouse"] == str(spark_engine)
    published = publishes.current_dir(tmp_path)
    kpis = duckdb.execute(
        "SELECT deployment, arrival_date, queries, joins FROM read_parquet(?) ORDER BY ALL", [str(published / "kpis.parquet")]
    ).fetchall()
    expected: dict[tuple[str, date], list[int]] = {}
    for i in range(1, 13):
        key = ("provisioned" if i % 2 == 0 else "serverless", date(2024, 3, 1 + i % 3))
        expected.setdefault(key, [0, 0])
        expected[key][0] += 10 * i
        expected[key][1] += i
    assert kpis == sorted((d, day, q, j) for (d, day), (q, j) in expected.items())
    empty = duckdb.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(published / "table_ingest_gaps.parquet")]).fetchall()
    assert [c[0] for c in empty] == ["table_id", "note"]


def test_forecast_tables_land_beside_dbts_and_both_readers_see_them(spark_engine: Path, spark_warehouse) -> None:
    with spark_tables.connect(spark_engine, "redset") as con:
        assert con.execute("SELECT instance_id, model, mase, origins FROM main.forecast_backtest ORDER BY 1").fetchall() == [
            (1, "naive", 0.5, 14), (2, "ets", 1.25, 14),
        ]  # fmt: skip
        assert con.execute("SELECT hour FROM main.workload_forecasts").fetchall() == [(datetime(2024, 3, 2, 1),)]
        assert con.execute("SELECT count(*) FROM main.forecast_history").fetchone()[0] == 0
    assert not [p for p in (spark_engine / "redset.db").iterdir() if p.name.startswith(".")]  # no staging left
    assert spark_warehouse[1]["forecast_backtest"] == {
        "rows": 2, "columns": ["deployment", "instance_id", "metric", "model", "mase", "smape", "origins"],
    }  # fmt: skip
