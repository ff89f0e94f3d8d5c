"""Paths, topic names and intervals, read from the environment with defaults, in one place.

Every setting is read when it is used (functions, not constants): tests can `monkeypatch.setenv` it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from pipeline_assets.storage import location

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values` while the block runs, then restored (the getters read it when called)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _path(name: str, default: Path) -> Path:
    return Path(_env(name, str(default))).expanduser().resolve()


def data_dir() -> Path:
    return _path("REDSET_DATA_DIR", PROJECT_ROOT / "data")


# The zones: under REDSET_STORAGE_URL or their own variables (storage/location.py); the getters give local folders.
def zone_url(zone: str) -> str:
    return location.zone_url(zone, data_dir())


def raw_dir() -> Path:
    """Append-only raw zone: Parquet, Hive-partitioned by arrival_date."""
    return location.local_dir("raw", data_dir())


def dead_letter_dir() -> Path:
    return location.local_dir("dead_letters", data_dir())


def landing_dir() -> Path:
    return location.local_dir("landing", data_dir())


def warehouse_path() -> Path:
    """dbt-duckdb's database file. One writing process at a time."""
    return _path("REDSET_WAREHOUSE", data_dir() / "warehouse.duckdb")


def serving_dir() -> Path:
    """Read-only Parquet exports that the dashboards read (never the warehouse file)."""
    return location.local_dir("serving", data_dir())


def alert_log_path() -> Path:
    return _path("REDSET_ALERT_LOG", data_dir() / "alerts.log")


def insecure_http() -> bool:
    """REDSET_INSECURE_HTTP=1 (`--insecure`): a SOURCE may be fetched over plain http://."""
    return _env("REDSET_INSECURE_HTTP", "0") == "1"


def kafka_home() -> Path:
    """Where the local broker keeps its jars, storage and logs (ignored by git)."""
    return _path("REDSET_KAFKA_HOME", PROJECT_ROOT / ".kafka")


def topic() -> str:
    return _env("REDSET_TOPIC", "redset.queries")


def consumer_group() -> str:
    return _env("REDSET_CONSUMER_GROUP", "redset-raw-dump")


def raw_max_messages() -> int:
    """Upper bound of messages one raw-dump run consumes."""
    return int(_env("REDSET_RAW_MAX_MESSAGES", "5000000"))


def raw_consumers() -> int:
    """Consumer processes of the raw dump, in one group (dump/parallel.py); useful up to min(partitions, cores)."""
    value = _env("REDSET_RAW_CONSUMERS", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"REDSET_RAW_CONSUMERS must be a whole number >= 1, got {value!r}")
    return int(value)


def dump_max_attempts() -> int:
    """Failed raw-dump runs of the same offsets before the next one runs in isolation mode."""
    return max(1, int(_env("REDSET_DUMP_MAX_ATTEMPTS", "3")))


def max_message_bytes() -> int:
    """Largest message value the raw dump parses; a bigger one is an `oversized` dead letter."""
    return int(_env("REDSET_MAX_MESSAGE_BYTES", str(1 << 20)))


def sensor_interval_seconds() -> int:
    return int(_env("REDSET_SENSOR_INTERVAL", "30"))


def live_test_seconds() -> float:
    """Live mode runs the dbt tests at most this often (~150 tests cost tens of seconds; a cycle a few)."""
    return float(_env("REDSET_LIVE_TEST_SECONDS", "300"))


# Bounds on memory, waits and stored history: name -> (environment variable, default).
BOUNDS: dict[str, tuple[str, int]] = {
    "raw_chunk_bytes": ("REDSET_RAW_CHUNK_BYTES", 64 << 20),  # a dump chunk closes at these value bytes
    "dbt_max_runtime_seconds": ("REDSET_DBT_MAX_RUNTIME_SECONDS", 7200),  # one dbt invocation, then stopped
    "warehouse_lock_wait_seconds": ("REDSET_WAREHOUSE_LOCK_WAIT_SECONDS", 7200),  # then alert and fail
    "log_max_bytes": ("REDSET_LOG_MAX_BYTES", 16 << 20),  # alerts.log, live/cycles.jsonl rotate to .1
    "run_retention_days": ("REDSET_RUN_RETENTION_DAYS", 30),  # finished runs older are deleted
    "evidence_rows": ("REDSET_EVIDENCE_ROWS", 50),  # query rows kept per insight in the snapshot's evidence
    "live_retry_seconds": ("REDSET_LIVE_RETRY_SECONDS", 60),  # a failed live run, then the next one
    "serving_publishes_kept": ("REDSET_SERVING_PUBLISHES_KEPT", 3),  # older snapshot publishes are deleted
}


def bound(name: str) -> int:
    """One of BOUNDS, from its environment variable or its default."""
    variable, default = BOUNDS[name]
    return int(float(_env(variable, str(default))))


def freshness_minutes() -> int:
    """The served marts and the snapshot are stale when the raw dump has lag and nothing was published for this long."""
    return int(_env("REDSET_FRESHNESS_MINUTES", "5"))


def build_max_attempts() -> int:
    """Failed build_marts_job runs of a date before the sensor stops retrying it (it is then stale)."""
    return int(_env("REDSET_BUILD_MAX_ATTEMPTS", "3"))


def build_retry_seconds() -> float:
    """Back-off after a date's first failed build; it doubles with each further failure."""
    return float(_env("REDSET_BUILD_RETRY_SECONDS", "60"))


def not_built_limit_seconds() -> float:
    """How long a consumed offset may wait for its first build before offsets_have_one_outcome fails."""
    return float(_env("REDSET_NOT_BUILT_LIMIT_SECONDS", "3600"))


def live_max_messages() -> int:
    """Most messages one live-mode cycle consumes: a backlog is worked off in cycles of this size."""
    return int(_env("REDSET_LIVE_MAX_MESSAGES", "250000"))


def live_poll_seconds() -> float:
    """Live mode's pause between cycles: batch writers can take the warehouse meanwhile."""
    return float(_env("REDSET_LIVE_POLL_SECONDS", "1"))


def live_insights_seconds() -> float:
    """How often live mode also rebuilds the insights models (models/marts/insights; 0: every cycle)."""
    return float(_env("REDSET_LIVE_INSIGHTS_SECONDS", "300"))


def span_start() -> date:
    """First day of the data's span (daily partitions start here)."""
    return date.fromisoformat(_env("REDSET_SPAN_START", "2024-02-29"))


def span_end() -> date:
    """First day after the data's span."""
    return date.fromisoformat(_env("REDSET_SPAN_END", "2024-06-01"))


# --- DuckDB's resources for the dbt build (the dbt-duckdb profile's `settings:`) ----------------


def duckdb_threads() -> int:
    """DuckDB's worker threads in the dbt build; default: every core."""
    return max(1, int(_env("REDSET_DUCKDB_THREADS", str(os.cpu_count() or 1))))


def duckdb_memory_limit() -> str:
    """DuckDB's memory cap ('8GB', '50%'); default 60 % of the RAM, room left for Dagster, dashboards, broker."""
    return _env("REDSET_DUCKDB_MEMORY_LIMIT", "60%")


def duckdb_temp_dir() -> Path:
    """Where DuckDB spills; default DuckDB's own, the warehouse file's name + '.tmp'."""
    return _path("REDSET_DUCKDB_TEMP_DIR", warehouse_path().with_name(warehouse_path().name + ".tmp"))


def dbt_window_rows() -> int:
    """Days are built in windows of at most this many raw rows (warehouse/build_windows.py); 0: all at once."""
    value = _env("REDSET_DBT_WINDOW_ROWS", "5000000")
    if not value.isdigit():
        raise ValueError(f"REDSET_DBT_WINDOW_ROWS must be a whole number of rows (0: no windows), got {value!r}")
    return int(value)


def duckdb_max_temp() -> str:
    """Cap on DuckDB's spill files ('40GB'); empty: half the disk free at duckdb_temp_dir() (warehouse/duckdb_limits)."""
    return _env("REDSET_DUCKDB_MAX_TEMP", "")


# ---------------------------------------------------------------------------------------------
# The engine dbt runs on, and the local Spark cluster (pipeline_assets/spark/)

ENGINES = ("duckdb", "spark")


def engine() -> str:
    """REDSET_ENGINE: `duckdb` (the default, embedded) or `spark` (the standalone cluster)."""
    value = _env("REDSET_ENGINE", "duckdb").lower()
    if value not in ENGINES:
        raise ValueError(f"REDSET_ENGINE={value!r} is not an engine; allowed values: {', '.join(ENGINES)}")
    if value == "spark" and importlib.util.find_spec("pyspark") is None:
        raise ValueError("REDSET_ENGINE=spark needs pyspark and dbt-spark: the `spark` extra (`pip install -e '.[spark]'`)")
    return value


def spark_home() -> Path:
    """Where `redset spark start` keeps the cluster's state, logs and executors' work folders."""
    return _path("REDSET_SPARK_HOME", PROJECT_ROOT / ".spark")


def spark_master_port() -> int:
    return int(_env("REDSET_SPARK_PORT", "7077"))


def spark_ui_port() -> int:
    """The master's web UI and JSON status (Spark's own default 8080 is the dbt docs' port here)."""
    return int(_env("REDSET_SPARK_UI_PORT", "8090"))


def spark_workers() -> int:
    return int(_env("REDSET_SPARK_WORKERS", "2"))


def spark_worker_cores() -> int:
    return int(_env("REDSET_SPARK_WORKER_CORES", "1"))


def spark_worker_memory() -> str:
    """Memory each worker offers its executor (Spark's size syntax: 512m, 2g); also the executor heap."""
    return _env("REDSET_SPARK_WORKER_MEMORY", "512m")


def spark_master() -> str:
    """The master dbt's SparkSession connects to: by default the one `redset spark start` runs."""
    return _env("REDSET_SPARK_MASTER", f"spark://127.0.0.1:{spark_master_port()}")


def spark_warehouse() -> Path:
    """spark.sql.warehouse.dir: every dbt table as Parquet under <schema>.db/<table>/."""
    return location.local_dir("spark_warehouse", data_dir())


def spark_metastore() -> Path:
    """The embedded Derby metastore's folder (one dbt process at a time)."""
    return _path("REDSET_SPARK_METASTORE", data_dir() / "spark-metastore")


def spark_schema() -> str:
    """The Spark database dbt's models go to (profiles.yml's `spark` output): <warehouse>/<schema>.db/."""
    return _env("REDSET_SPARK_SCHEMA", "redset")


def spark_executor_memory() -> str:
    """Each executor's heap in dbt's Spark application: all a worker offers (a 512m worker never grants 1g)."""
    return _env("REDSET_SPARK_EXECUTOR_MEMORY", spark_worker_memory())


def spark_driver_host() -> str:
    """The address executors call dbt's driver back on (in Docker: the driver container's name)."""
    return _env("REDSET_SPARK_DRIVER_HOST", "127.0.0.1")


def spark_driver_bind_address() -> str:
    return _env("REDSET_SPARK_DRIVER_BIND_ADDRESS", "127.0.0.1")
