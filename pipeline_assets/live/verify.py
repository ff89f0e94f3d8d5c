"""Live mode's dbt tests, on their own slower cadence: `run_checks(dbt, env)`, or in slices.

A live cycle builds models without their tests (a cycle costs well under a second per model; the
150-odd tests cost seconds), so every REDSET_LIVE_TEST_SECONDS (`due`) the loop runs `dbt test`
through its warm runner, one file's tests between two cycles (background.py, `check_results`
per slice, `record` once at the end). Each test's result becomes the asset check dagster-dbt already defines
for it: key (the tested model's asset key, the test's node name), found with dagster-dbt's own
`get_asset_check_key_for_test`, so the UI shows the same check passing or failing as after a
batch `dbt build`.

A failing error-severity test (status fail or error; a `severity: warn` test only warns) never
stops the snapshots. It makes the warehouse *unverified*: `_verification.json` in the serving
folder says since when and which tests fail, the dashboards show a banner from it, and one
`dbt_tests_failing` alert goes out when the episode starts (not on every run). The next run with
no failing error-severity test clears it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.serving import publishes, verification
from pipeline_assets.serving.verification import STATE_FILE
from pipeline_assets.warehouse.dbt_assets import dbt_all_time_models, dbt_daily_models, dbt_project
from pipeline_assets.warehouse.lock import warehouse_writer
from pipeline_assets.warehouse.translator import translator

ERROR_STATUSES = ("fail", "error")  # dbt's TestStatus values of a failed error-severity test
LISTED = 10  # failing tests named in an alert

_logger = logging.getLogger(__name__)


class Runner(Protocol):
    """The warm dbt runner of live mode (live/warm_dbt.py), or anything invoking dbt alike."""

    def invoke(self, args: list[str], env: Mapping[str, str]) -> Any: ...


def due(last_run: float | None, now: float) -> bool:
    """Whether the tests are due (times from time.monotonic(); None: never ran in this process)."""
    return last_run is None or now - last_run >= settings.live_test_seconds()


@cache
def _manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def defined_checks() -> set[dg.AssetCheckKey]:
    """The asset checks dagster-dbt made of the dbt tests (what the UI lists)."""
    return set(dbt_daily_models.check_keys) | set(dbt_all_time_models.check_keys)


def check_key(unique_id: str) -> dg.AssetCheckKey | None:
    """The asset check of dbt test `unique_id`, named as dagster-dbt names it."""
    return get_asset_check_key_for_test(_manifest(dbt_project.manifest_path), translator, unique_id, dbt_project)


def evaluation(result: Any, key: dg.AssetCheckKey) -> dg.AssetCheckEvaluation:
    """One dbt test result (a RunResult of `dbt test`) as its asset check's evaluation."""
    status = str(result.status)
    return dg.AssetCheckEvaluation(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=status == "pass",
        severity=dg.AssetCheckSeverity.WARN if status == "warn" else dg.AssetCheckSeverity.ERROR,
        description=result.message or None,
        metadata={
            "status": status,
            "failures": dg.MetadataValue.int(int(result.failures or 0)),
            "unique_id": result.node.unique_id,
            "source": "live mode (dbt test)",
        },
    )


def read_state(serving_dir: publishes.Serving | None = None) -> dict[str, Any] | None:
    """The last verification's state (serving/verification.py), or None when there is none."""
    return verification.read_state(serving_dir or settings.zone_url("serving"))


def record(failed: list[str], serving_dir: publishes.Serving | None = None, log: Any = None) -> dict[str, Any]:
    """Write the verification state after a test run that found `failed` (error-severity) tests;
    alert when this starts an unverified episode. Returns the state written."""
    log = log or _logger
    zone = publishes.zone(serving_dir or settings.zone_url("serving"))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    before = read_state(zone) or {"verified": True}
    if not failed:
        if not before["verified"]:
            log.info(f"dbt tests pass again: verified (unverified since {before.get('unverified_since')})")
        state = {"verified": True, "checked_at": now, "unverified_since": None, "failed": []}
    else:
        since = before.get("unverified_since") if not before["verified"] else None
        state = {"verified": False, "checked_at": now, "unverified_since": since or now, "failed": sorted(failed)}
        if since is None:  # a new episode: one alert
            named = ", ".join(state["failed"][:LISTED]) + (f" and {len(failed) - LISTED} more" if len(failed) > LISTED else "")
            send_alert(
                "dbt_tests_failing",
                f"{len(failed)} error-severity dbt test(s) failing in live mode: {named}. "
                "The dashboards keep updating, marked unverified until the tests pass.",
                log,
                tests=len(failed),
            )
    zone.write_json(state, STATE_FILE)
    return state


def run_checks(dbt: Runner, env: Mapping[str, str], log: Any = None) -> list[dg.AssetCheckEvaluation]:
    """`dbt test` of every test through `dbt`, its results as asset check evaluations (for the loop
    to report), and the verification state updated (record)."""
    evaluations, failed = check_results(dbt, ["test"], env, log)
    record(failed, log=log)
    return evaluations


def check_results(dbt: Runner, args: list[str], env: Mapping[str, str], log: Any = None) -> tuple[list[dg.AssetCheckEvaluation], list[str]]:
    """`dbt <args>` (a `dbt test`, of some tests or all): the evaluations of its results and the
    names of its failing error-severity tests. A dbt that fails as a whole (no results) counts as
    one failing test, named after the command, so the dashboards are not shown as verified."""
    log = log or _logger
    with warehouse_writer("live mode: dbt test", log=log):
        outcome = dbt.invoke(args, dict(env))
    results = getattr(outcome.result, "results", None)
    if results is None:
        return [], [f"dbt {' '.join(args)}: {outcome.exception or 'no results'}"]
    known, evaluations, failed = defined_checks(), [], []
    for result in results:
        if str(result.status) in ERROR_STATUSES:
            failed.append(result.node.name)
        key = check_key(result.node.unique_id)
        if key in known:
            evaluations.append(evaluation(result, key))
        elif str(result.status) != "pass":  # e.g. a relationships test across the two dbt asset sets
            log.warning(f"dbt test {result.node.unique_id} ({result.status}) has no asset check in Dagster")
    return evaluations, failed
