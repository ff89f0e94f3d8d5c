"""The project's executor: Dagster's in-process executor, with every pool of the run limited to one step.

Each pool the project uses guards a single-writer resource (`duckdb`: DuckDB lets one process open
data/warehouse.duckdb for writing; `raw_kafka`: one dump per consumer group). Dagster enforces a
pool only where the instance has a limit for it, and a fresh instance (a bare `dagster dev`, a new
DAGSTER_HOME without scripts/dagster.yaml) has none, so writers could collide. Before any step
claims a slot, this executor gives each pool of the run's plan a limit of 1, unless the pool
already has a limit of its own (set with `dagster instance concurrency set` or in the UI).

It also takes the run's worker lock first (runtime/workers.py), held until the worker exits: the
sensors' liveness check marks a STARTED run failed once no process holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from pipeline_assets.runtime.workers import hold_worker_lock

SINGLE_WRITER_LIMIT = 1


def ensure_single_writer_pools(instance: dg.DagsterInstance, pools: Iterable[str]) -> list[str]:
    """Give each pool without a limit of its own a limit of 1; returns the pools it set."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []  # an in-memory instance (execute_in_process) runs one run at a time anyway
    limits = {pool.name: pool for pool in storage.get_pool_limits()}
    changed = []
    for pool in sorted(set(pools)):
        known = limits.get(pool)
        # An instance default (`concurrency.pools.default_limit`) other than 1 would let writers in
        # side by side too; a limit someone set explicitly is theirs to keep.
        if known is None or (known.from_default and known.limit != SINGLE_WRITER_LIMIT):
            storage.set_concurrency_slots(pool, SINGLE_WRITER_LIMIT)
            changed.append(pool)
    return changed


class _SingleWriterPoolsExecutor(dg.Executor):
    def __init__(self, inner: dg.Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
        hold_worker_lock(plan_context.instance, plan_context.run_id)
        pools = [step.pool for step in execution_plan.get_steps_to_execute_in_topo_order()]
        ensure_single_writer_pools(plan_context.instance, [p for p in pools if p])
        yield from self._inner.execute(plan_context, execution_plan)


@dg.executor(
    name="in_process_single_writer_pools",
    config_schema=dg.in_process_executor.config_schema,
)
def single_writer_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """In process (a process per step would cost a code-location load each, ~5 s), every pool one at a time."""
    return _SingleWriterPoolsExecutor(dg.in_process_executor.executor_creation_fn(init_context))
