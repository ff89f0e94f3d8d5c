"""A warm dbt: dbt-core's programmatic dbtRunner, the project parsed once per process.

A dbt CLI process pays about 4 s of imports and a parse before its first model; live mode runs
dbt every few seconds, so it keeps one dbtRunner and hands it the manifest of its one parse
(`dbtRunner(manifest=...)`, dbt's "programmatic invocations"). dbt allows one invocation at a
time per process (it keeps global state), so `invoke` holds a lock.

Each invocation gets warehouse/dbt_assets.py's environment (dbt_env: warehouse, raw zone, span) plus the caller's
(e.g. window_env's REDSET_MIN_DATE / REDSET_MAX_DATE, read by the models when they run, so they
never invalidate the parse). dbt-duckdb keeps the DuckDB database open in-process after a run;
it is closed after every invocation, so batch writers and readers can open the file between them.
Each invocation has the batch builds' deadline, REDSET_DBT_MAX_RUNTIME_SECONDS (dbt_deadline.py):
past it, its queries are cancelled and it fails with DbtDeadlineError.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from dbt.adapters.factory import get_adapter_by_type
from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest

from pipeline_assets import settings
from pipeline_assets.warehouse import duckdb_limits, parse_state
from pipeline_assets.warehouse.dbt_assets import close_duckdb_database, dbt_env, dbt_project, dbt_target
from pipeline_assets.warehouse.dbt_deadline import cancel_after, max_runtime_seconds, stopped_message

# Every invocation: its own target and log folders (artifacts of the batch runs stay apart), no
# console output but errors, info-level file logs (debug would log every statement), no tracking.
QUIET = ["--quiet", "--log-level-file", "info", "--no-send-anonymous-usage-stats"]


class DbtInvocationError(RuntimeError):
    """A dbt invocation failed: names the command and what dbt reported."""


class DbtDeadlineError(DbtInvocationError):
    """A dbt invocation ran past REDSET_DBT_MAX_RUNTIME_SECONDS and was stopped."""


class WarmDbt:
    """One parse, then any number of invocations (`invoke`), one at a time."""

    def __init__(self, work_dir: Path | None = None) -> None:
        # Default: a folder of dbt's target/ for live mode (one live process per project, see live.lock).
        self.work_dir = Path(work_dir or dbt_project.project_dir / dbt_project.target_path / "live")
        self.parses = 0  # how many times this runner parsed the project (the test expects 1)
        self._manifest: Manifest | None = None
        self._runner: dbtRunner | None = None
        self._lock = threading.Lock()

    def _args(self) -> list[str]:
        project = str(dbt_project.project_dir)
        return [
            "--project-dir", project, "--profiles-dir", str(dbt_project.profiles_dir or project),
            "--target-path", str(self.work_dir / "target"), "--log-path", str(self.work_dir / "logs"),
            *QUIET,
        ]  # fmt: skip

    @property
    def manifest(self) -> Manifest:
        """The parsed project; parsed on first use, in dbt_env's environment (the runs')."""
        with self._lock:
            if self._manifest is None:
                self._manifest = self._parse()
                self._runner = dbtRunner(manifest=self._manifest)
            return self._manifest

    def _parse(self) -> Manifest:
        target = self.work_dir / "target"
        target.mkdir(parents=True, exist_ok=True)
        with settings.environment(dbt_env(None)):
            # Start from the partial-parse state of this profile (parse_state): seconds saved.
            with parse_state.around(target, dbt_target()):
                result = dbtRunner().invoke(["parse", *self._args()])
        self.parses += 1
        close_duckdb_database()
        _reraise_interrupt(result)
        if not result.success or not isinstance(result.result, Manifest):
            raise DbtInvocationError(f"dbt parse failed: {result.exception or result.result}")
        return result.result

    def invoke(self, args: list[str], env: Mapping[str, str] | None = None) -> dbtRunnerResult:
        """`dbt <args>` with the parsed manifest, in dbt_env(None) updated with `env`. Returns
        dbt's result (check `.success`); an interrupt (Ctrl-C, run termination) is re-raised, and
        DbtDeadlineError raised past the deadline. The DuckDB database is closed afterwards."""
        self.manifest  # noqa: B018  (parses once, outside the lock below)
        assert self._runner is not None
        # The same DuckDB bounds as a batch build (duckdb_limits), checked before each invocation.
        limits = duckdb_limits.dbt_env(duckdb_limits.check_temp_space())
        with self._lock, settings.environment({**dbt_env(None), **limits, **(env or {})}):
            try:
                with cancel_after(max_runtime_seconds(), self._cancel_queries) as expired:
                    result = self._runner.invoke([*args, *self._args()])
            finally:
                close_duckdb_database()
        if expired():
            raise DbtDeadlineError(stopped_message(f"dbt {' '.join(args)}"))
        _reraise_interrupt(result)
        return result

    def _cancel_queries(self) -> None:
        """Cancel the running invocation's queries (its adapter exists only while it runs)."""
        try:
            adapter = get_adapter_by_type(self._manifest.metadata.adapter_type)  # not .manifest: invoke holds the lock
        except KeyError:
            return
        adapter.cancel_open_connections()


def _reraise_interrupt(result: dbtRunnerResult) -> None:
    """dbtRunner turns every exception into a failed result, KeyboardInterrupt (and Dagster's
    run termination, also a BaseException) included: those must stop the caller."""
    if result.exception is not None and not isinstance(result.exception, Exception):
        raise result.exception


def failures(result: dbtRunnerResult) -> list[str]:
    """'<model>: <status>: <message>' for each node that did not succeed, or dbt's exception."""
    if result.exception is not None:
        return [f"{type(result.exception).__name__}: {result.exception}"]
    rows = getattr(result.result, "results", None) or []
    return [
        f"{r.node.name}: {r.status}: {r.message}" for r in rows if str(r.status) not in ("success", "pass", "skipped")
    ] or ([] if result.success else ["dbt reported failure without a failed node"])
