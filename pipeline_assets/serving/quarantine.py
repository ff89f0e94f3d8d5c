"""The quarantine's row counts by reason, which the snapshot publishes in its manifest.

Dashboards and the metrics collector never open the warehouse, so they read these counts from
`_published.json`. Every reason dbt can give is listed, at 0 when no row has it, so that a
counter exists before its first quarantined row.
"""

from __future__ import annotations

import duckdb
import yaml

from pipeline_assets import settings

# quarantine_reason() in dbt_project/macros/rules.sql, in its order; then one reason per column of
# var plausible_bounds (tests/test_metrics_reasons.py checks both against dbt's own list).
FIXED_REASONS = (
    "null_key", "unknown_deployment", "negative_duration", "arrival_out_of_span", "unknown_query_type",
    "cached_without_source", "too_many_table_ids",
)  # fmt: skip


def reasons() -> tuple[str, ...]:
    """Every reason quarantine_reason() can give, as the macro quarantine_reasons() lists them."""
    project = yaml.safe_load((settings.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    bounds = project.get("vars", {}).get("plausible_bounds", {})
    return FIXED_REASONS + tuple(f"implausible_value: {column}" for column in bounds)


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of main.quarantine_queries by reason, every known reason included."""
    found = dict(con.execute("SELECT reason, count(*) FROM main.quarantine_queries GROUP BY reason").fetchall())
    result = dict.fromkeys(reasons(), 0)
    result.update({str(reason): int(n) for reason, n in found.items()})
    return result
