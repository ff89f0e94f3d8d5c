"""The serving folder's verification state: `_verification.json`, written by live mode's dbt tests
(live/verify.py) and read by the dashboards, which show a banner while it says unverified.

{"verified": bool, "checked_at": ISO time, "unverified_since": ISO time or null, "failed": [test names]}
No file: live mode never ran the tests here (the batch path runs them inside `dbt build`), so
nothing is shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline_assets.serving import publishes

STATE_FILE = "_verification.json"
NAMED = 5  # failing tests named in the banner


def read_state(serving: publishes.Serving) -> dict[str, Any] | None:
    """The last verification's state, or None when live mode never ran the tests here."""
    return publishes.zone(serving).read_json(STATE_FILE)


def banner(state: dict[str, Any] | None) -> str | None:
    """'Unverified since <time>: <n> dbt tests failing (names)', or None while verified."""
    if not state or state.get("verified", True):
        return None
    failed = list(state.get("failed") or [])
    since = state.get("unverified_since")
    when = datetime.fromisoformat(since).strftime("%Y-%m-%d %H:%M:%S %Z").strip() if since else "?"
    names = ", ".join(failed[:NAMED]) + (f" and {len(failed) - NAMED} more" if len(failed) > NAMED else "")
    tests = "test" if len(failed) == 1 else "tests"
    return (
        f"**Unverified since {when}**: {len(failed)} dbt {tests} failing ({names}). "
        "The numbers keep updating; they are not checked until the tests pass again."
    )
