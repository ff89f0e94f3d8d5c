"""Data access for the dashboards: the serving Parquet files, nothing else.

Queries run on an in-memory DuckDB connection with one view per published file, so a dashboard
never opens (or waits on) the warehouse that dbt writes. All user input (dates,
deployments, instance, board, period) travels as prepared-statement parameters; the SQL text
is fixed in this module.

Streamlit is not imported here: the pages chart what these functions return, and the tests
call them directly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from pipeline_assets import settings
from pipeline_assets.schema import QUERY_TYPES
from pipeline_assets.serving import publishes, source_freshness, verification
from pipeline_assets.serving.dashboard.filters import WHERE_DAY, WHERE_INSTANCE, Filters, Instance, dates
from pipeline_assets.serving.evidence import EVIDENCE
from pipeline_assets.serving.snapshot import KPI_COLUMNS, KPIS, read_manifest
from pipeline_assets.warehouse.served import SERVED_MODELS


@dataclass
class ServingData:
    """Reads one serving zone (a folder or s3://) through one in-memory DuckDB connection (made on first
    use). A query reads all its tables from the publish the pointer names when it starts (publishes.py),
    never two, through the zone's file system.

    The dashboards share one per snapshot between reruns and sessions (ui.serving_data), so
    queries take turns on the connection.
    """

    serving: publishes.Serving = field(default_factory=lambda: settings.zone_url("serving"))
    zone: publishes.Zone = field(init=False, repr=False)
    _con: duckdb.DuckDBPyConnection | None = field(default=None, init=False, repr=False)
    # name -> (its version (Publish.read_table), table): a file is read again only once it changed.
    _loaded: dict[str, tuple[tuple[Any, ...], pa.Table]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.zone = publishes.zone(self.serving)

    # --- what is published -------------------------------------------------------------

    def manifest(self) -> dict[str, object] | None:
        return read_manifest(self.zone)

    def published_at(self) -> str | None:
        """The snapshot's publish stamp (None before the first publish): a new one, new data."""
        manifest = self.manifest()
        return None if manifest is None else str(manifest["published_at"])

    def verification_banner(self) -> str | None:
        """Live mode's "unverified since ..." text while dbt tests fail (read at every rerun)."""
        return verification.banner(verification.read_state(self.zone))

    def raw_freshness(self) -> str | None:
        """The raw zone's last `dbt source freshness` result, as the status line says it."""
        return source_freshness.status_text(source_freshness.read_state(self.zone))

    def tables(self, publish: publishes.Publish | None = None) -> set[str]:
        """The tables of the current publish (or of `publish`)."""
        names = (publish or self.zone.current()).names()
        return {n for n in (*SERVED_MODELS, KPIS, EVIDENCE) if f"{n}.parquet" in names}

    def is_empty(self) -> bool:
        """True until a snapshot with query metrics has been published."""
        return self.manifest() is None or KPIS not in self.tables()

    def query(self, sql: str, params: dict[str, object] | None = None, needs: tuple[str, ...] = ()) -> pd.DataFrame:
        """Run fixed `sql` with `params` over the published files.

        `needs` names the tables the SQL reads; when one has not been published yet the result
        is an empty frame, which the pages show as "no data yet".
        """
        publish = self.zone.current()  # one publish for the whole query
        available = self.tables(publish)
        if any(n not in available for n in needs):
            return pd.DataFrame()
        with self._lock:
            if self._con is None:
                self._con = duckdb.connect(":memory:")
            for name in needs or tuple(available):
                self._load(publish, name)
            return self._con.execute(sql, params or {}).df()

    def _load(self, publish: publishes.Publish, name: str) -> None:
        """Register the file `name` of `publish` as a table, re-read only once it changed (one handle:
        DuckDB's own scan opens a path several times, and a file replaced in between mixed two files)."""
        known = self._loaded[name][0] if name in self._loaded else None
        version, table = publish.read_table(f"{name}.parquet", known)
        if table is not None:
            self._loaded[name] = (version, table)
            self._con.register(name, table)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con, self._loaded = None, {}

    # --- filter choices ----------------------------------------------------------------

    def deployments(self) -> list[str]:
        df = self.query("SELECT DISTINCT deployment FROM kpis ORDER BY 1", needs=(KPIS,))
        return df["deployment"].tolist() if len(df) else []

    def date_bounds(self) -> tuple[date, date] | None:
        df = self.query("SELECT min(arrival_date) AS lo, max(arrival_date) AS hi FROM kpis", needs=(KPIS,))
        if df.empty or pd.isna(df.at[0, "lo"]):
            return None
        return pd.Timestamp(df.at[0, "lo"]).date(), pd.Timestamp(df.at[0, "hi"]).date()

    # --- aggregate (fleet) view ----------------------------------------------------------

    def kpis(self, f: Filters) -> dict[str, float]:
        sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in KPI_COLUMNS)
        df = self.query(f"SELECT {sums} FROM kpis WHERE {WHERE_DAY}", f.params(), needs=(KPIS,))
        return {c: 0.0 for c in KPI_COLUMNS} if df.empty else {c: float(df.at[0, c]) for c in KPI_COLUMNS}

    def query_types(self, f: Filters) -> pd.DataFrame:
        """query_type, queries: the donut."""
        sums = ", ".join(f"coalesce(sum(n_{t}), 0) AS \"{t}\"" for t in QUERY_TYPES)
        df = self.query(f"SELECT {sums} FROM query_metrics WHERE {WHERE_DAY}", f.params(), needs=("query_metrics",))
        if df.empty:
            return pd.DataFrame(columns=["query_type", "queries"])
        out = df.melt(var_name="query_type", value_name="queries")
        return out[out["queries"] > 0].reset_index(drop=True)

    def hourly(self, f: Filters) -> pd.DataFrame:
        """Per hour and deployment: queries, cached, cache hit rate, MB scanned and spilled."""
        return self.query(
            f"""
            SELECT hour, deployment, sum(queries) AS queries, sum(cached) AS cached,
                   sum(cached) / sum(queries) AS cache_hit_rate,
                   sum(mbytes_scanned) AS mbytes_scanned, sum(mbytes_spilled) AS mbytes_spilled
            FROM query_metrics WHERE {WHERE_DAY}
            GROUP BY hour, deployment ORDER BY hour, deployment
            """,
            f.params(),
            needs=("query_metrics",),
        )

    def spill_vs_scan(self, f: Filters) -> pd.DataFrame:
        """Per instance: MB scanned and spilled, and queries."""
        return self.query(
            f"""
            SELECT deployment, instance_id, sum(queries) AS queries,
                   sum(mbytes_scanned) AS mbytes_scanned, sum(mbytes_spilled) AS mbytes_spilled
            FROM query_metrics WHERE {WHERE_DAY}
            GROUP BY deployment, instance_id ORDER BY mbytes_scanned DESC
            """,
            f.params(),
            needs=("query_metrics",),
        )

    def boards(self) -> list[str]:
        df = self.query("SELECT DISTINCT board FROM leaderboard ORDER BY 1", needs=("leaderboard",))
        return df["board"].tolist() if len(df) else []

    def periods(self, f: Filters) -> list[str]:
        """'all', then the days within the date range that have boards, newest first."""
        df = self.query(
            """
            SELECT DISTINCT period FROM leaderboard
            WHERE period <> 'all' AND CAST(period AS DATE) BETWEEN $start AND $end
            ORDER BY period DESC
            """,
            {"start": f.params()["start"], "end": f.params()["end"]},
            needs=("leaderboard",),
        )
        return ["all"] + (df["period"].tolist() if len(df) else [])

    def leaderboard(self, board: str, period: str, f: Filters, limit: int = 10) -> pd.DataFrame:
        """The best `limit` rows of one board and period, within the deployment filter."""
        return self.query(
            """
            SELECT rank, entity, value, deployment, instance_id, user_id, query_id FROM leaderboard
            WHERE board = $board AND period = $period AND list_contains($deployments, deployment)
            ORDER BY value DESC, rank, entity LIMIT $limit
            """,
            {"board": board, "period": period, "deployments": list(f.deployments), "limit": limit},
            needs=("leaderboard",),
        )

    def compile_by_type(self, f: Filters) -> pd.DataFrame:
        """Per query_type: queries, compile share, and average scans/joins/aggregations.

        compile_share is averaged with the query counts as weights (the mart holds per-group
        shares, not the durations behind them).
        """
        return self.query(
            f"""
            SELECT query_type, sum(queries) AS queries, sum(compiled_queries) AS compiled_queries,
                   sum(compile_ms_sum) AS compile_ms_sum,
                   sum(compile_share * queries) / sum(queries) AS compile_share,
                   sum(scans_sum) / sum(queries) AS scans_avg,
                   sum(joins_sum) / sum(queries) AS joins_avg,
                   sum(aggregations_sum) / sum(queries) AS aggregations_avg
            FROM compile_metrics WHERE {WHERE_DAY}
            GROUP BY query_type ORDER BY queries DESC
            """,
            f.params(),
            needs=("compile_metrics",),
        )

    # --- expert view (one instance) -----------------------------------------------------

    def instances(self, f: Filters) -> pd.DataFrame:
        """deployment, instance_id, queries: busiest first."""
        return self.query(
            f"""
            SELECT deployment, instance_id, sum(queries) AS queries FROM query_metrics
            WHERE {WHERE_DAY} GROUP BY deployment, instance_id
            ORDER BY queries DESC, deployment, instance_id
            """,
            f.params(),
            needs=("query_metrics",),
        )

    def stress(self, f: Filters, inst: Instance, bucket_minutes: int = 1) -> pd.DataFrame:
        """Stress index and spilled MB over time; the peak per bucket when bucket_minutes > 1."""
        return self.query(
            f"""
            SELECT time_bucket(to_minutes($bucket), minute) AS minute,
                   max(stress_index) AS stress_index, max(spilled_mb_15m) AS spilled_mb_15m,
                   sum(queries) AS queries
            FROM stress_index WHERE {WHERE_INSTANCE} AND arrival_date BETWEEN $start AND $end
            GROUP BY 1 ORDER BY 1
            """,
            {**inst.params(), **dates(f), "bucket": int(bucket_minutes)},
            needs=("stress_index",),
        )

    def latency(self, f: Filters, inst: Instance) -> pd.DataFrame:
        """Per hour: execution p50/p95/p99 and queries."""
        return self.query(
            f"""
            SELECT hour, exec_p50_ms, exec_p95_ms, exec_p99_ms, queue_p95_ms, queries FROM query_metrics
            WHERE {WHERE_INSTANCE} AND arrival_date BETWEEN $start AND $end ORDER BY hour
            """,
            {**inst.params(), **dates(f)},
            needs=("query_metrics",),
        )

    def table_workload(self, inst: Instance) -> pd.DataFrame:
        """The instance's tables, most-read first (all time: the mart has no dates)."""
        return self.query(
            f"""
            SELECT table_id, selects, update_deletes, ingests, select_share, analytical,
                   median_s_since_last_ingest, median_s_until_next_ingest
            FROM table_workload WHERE {WHERE_INSTANCE}
            ORDER BY selects DESC, table_id
            """,
            inst.params(),
            needs=("table_workload",),
        )

    def ingest_gaps(self, f: Filters, inst: Instance, tables: int = 5, sample: int = 50_000) -> pd.DataFrame:
        """table_id, seconds since the last / until the next ingest, for the busiest tables."""
        return self.query(
            f"""
            WITH busiest AS (
                SELECT table_id FROM table_workload WHERE {WHERE_INSTANCE}
                ORDER BY selects DESC, table_id LIMIT $tables
            )
            SELECT g.table_id, g.seconds_since_last_ingest, g.seconds_until_next_ingest
            FROM table_ingest_gaps AS g JOIN busiest USING (table_id)
            WHERE g.deployment = $deployment AND g.instance_id = $instance_id
              AND CAST(g.arrival_timestamp AS DATE) BETWEEN $start AND $end
            ORDER BY g.arrival_timestamp DESC LIMIT $sample
            """,
            {**inst.params(), **dates(f), "tables": tables, "sample": sample},
            needs=("table_workload", "table_ingest_gaps"),
        )

    def top_tables(self, f: Filters, inst: Instance, limit: int = 10) -> pd.DataFrame:
        """table_id, reads, writes from the flattened access rows, most accessed first."""
        return self.query(
            f"""
            SELECT table_id, count(*) FILTER (access = 'read') AS reads,
                   count(*) FILTER (access = 'write') AS writes, count(*) AS accesses
            FROM flattened_table_access
            WHERE {WHERE_INSTANCE} AND arrival_date BETWEEN $start AND $end
            GROUP BY table_id ORDER BY accesses DESC, table_id LIMIT $limit
            """,
            {**inst.params(), **dates(f), "limit": limit},
            needs=("flattened_table_access",),
        )

