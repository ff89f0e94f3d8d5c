"""The raw zone's freshness for the dashboards: `dbt source freshness` on `ingested_at`, its
result kept as `_source_freshness.json` in the serving folder and shown in the status line.

Run after each publish (freshness_check.py): by `serving_snapshot` (batch) and by live mode on
its dbt-test cadence, under the warehouse's writer lock (dbt-duckdb opens the warehouse file).
This module only keeps and words the result: the dashboards import it, without dbt. Thresholds: the source's
`freshness` in dbt_project/models/staging/_sources.yml (REDSET_RAW_FRESHNESS_*_MINUTES). A run that
fails to say anything is kept as status `unknown` with dbt's message, never raised: freshness
informs the readers, it does not stop a publish.

{"status": "pass"|"warn"|"error"|"unknown", "checked_at": ISO, "max_loaded_at": ISO or null,
 "age_seconds": float or null, "warn_after_minutes": int or null, "error_after_minutes": int or null,
 "message": str or null}
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pipeline_assets import settings
from pipeline_assets.serving import publishes

STATE_FILE = "_source_freshness.json"
MINUTES = {"minute": 1, "hour": 60, "day": 1440}


def _minutes(threshold: dict[str, Any] | None) -> int | None:
    if not threshold or threshold.get("count") is None:
        return None
    return int(threshold["count"]) * MINUTES[threshold.get("period") or "minute"]


def summarize(sources_json: dict[str, Any] | None, message: str | None = None) -> dict[str, Any]:
    """The state of one run from dbt's sources.json (None: dbt wrote none; `message` says why)."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = (sources_json or {}).get("results") or []
    if not results:
        return {"status": "unknown", "checked_at": now, "max_loaded_at": None, "age_seconds": None,
                "warn_after_minutes": None, "error_after_minutes": None, "message": message or "no freshness result"}  # fmt: skip
    result = results[0]
    criteria = result.get("criteria") or {}
    status = result.get("status")
    return {
        "status": status if status in ("pass", "warn", "error") else "unknown",
        "checked_at": now,
        "max_loaded_at": result.get("max_loaded_at"),
        "age_seconds": result.get("max_loaded_at_time_ago_in_s"),
        "warn_after_minutes": _minutes(criteria.get("warn_after")),
        "error_after_minutes": _minutes(criteria.get("error_after")),
        "message": result.get("error") or result.get("message") if status not in ("pass", "warn", "error") else None,
    }


def _age(seconds: float) -> str:
    for unit, size, below in (("d", 86400, 2 * 86400), ("h", 3600, 3600), ("min", 60, 60)):  # hours up to 2 days
        if seconds >= below:
            return f"{seconds / size:.1f} {unit}" if unit != "min" else f"{seconds / size:.0f} min"
    return f"{seconds:.0f} s"


def status_text(state: dict[str, Any] | None) -> str | None:
    """'raw zone fresh: last ingest 3 min ago' / 'raw zone WARN: ...' for the status line; None before any check."""
    if not state:
        return None
    if state.get("status") == "unknown" or state.get("age_seconds") is None:
        return f"raw zone freshness unknown ({state.get('message') or 'no result'})"
    age = f"last ingest {_age(float(state['age_seconds']))} ago"
    if state["status"] == "pass":
        return f"raw zone fresh: {age}"
    limit = state.get("error_after_minutes") if state["status"] == "error" else state.get("warn_after_minutes")
    return f"raw zone {state['status'].upper()}: {age} (over {limit} min)"


def read_state(serving: publishes.Serving | None = None) -> dict[str, Any] | None:
    return publishes.zone(serving or settings.zone_url("serving")).read_json(STATE_FILE)


def write_state(state: dict[str, Any], serving: publishes.Serving | None = None) -> None:
    publishes.zone(serving or settings.zone_url("serving")).write_json(state, STATE_FILE)  # the old state or the new one
