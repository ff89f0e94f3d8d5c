"""A live cycle's materializations, as Dagster events under the keys the asset definitions use.

Per cycle: `raw_queries` (the raw dump's own metadata: rows, arrival dates, offsets consumed and
committed), each daily dbt model once per partition (day) it rebuilt, each all-time mart, then
`serving_snapshot`. So the asset lineage UI, each asset's history and partition status, and what
`dagster asset materialize` sees stay true while no per-batch run exists.

Inside the live_mode_job run the events are logged by the run (`context.log_event`); `redset
live` reports them to DAGSTER_HOME's instance as runless events (`report_runless_asset_event`).
Asset check evaluations always go to the instance (a run's log_event takes no check evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg

from pipeline_assets.live.cycle import CycleResult
from pipeline_assets.live.switch import LIVE_SESSION_METADATA
from pipeline_assets.raw.kafka_dump import dump_metadata
from pipeline_assets.serving.snapshot import publication_metadata

RAW_QUERIES = dg.AssetKey("raw_queries")
SERVING_SNAPSHOT = dg.AssetKey("serving_snapshot")


class Reporter:
    """Where a live loop's events go: a run's event log (`log_event`) or the instance, runless."""

    def __init__(self, instance: dg.DagsterInstance, log_event: Callable[[Any], None] | None = None) -> None:
        self.instance = instance
        self._log_event = log_event or instance.report_runless_asset_event

    @classmethod
    def in_run(cls, context: dg.OpExecutionContext) -> Reporter:
        return cls(context.instance, context.log_event)

    def materializations(self, events: Iterable[dg.AssetMaterialization]) -> int:
        count = 0
        for event in events:
            self._log_event(event)
            count += 1
        return count

    def checks(self, evaluations: Iterable[dg.AssetCheckEvaluation]) -> int:
        count = 0
        for evaluation in evaluations:
            self.instance.report_runless_asset_event(evaluation)
            count += 1
        return count


def cycle_events(cycle: CycleResult) -> list[dg.AssetMaterialization]:
    """Everything one cycle materialized, upstream first."""
    stamp = {"live_cycle": dg.MetadataValue.int(cycle.number), LIVE_SESSION_METADATA: cycle.session}
    events = []
    if cycle.stats.messages:
        committed = {str(p): last + 1 for p, last in sorted(cycle.stats.last_offset.items())}
        metadata = {**dump_metadata(cycle.options, cycle.stats), "committed_offsets": dg.MetadataValue.json(committed)}
        events.append(dg.AssetMaterialization(RAW_QUERIES, metadata={**metadata, **stamp}))
    for model in cycle.build.models if cycle.build else []:
        if not model.ok:
            continue
        metadata = {**stamp, "dbt_status": model.status, "seconds": dg.MetadataValue.float(round(model.seconds, 3))}
        if model.window is None:
            events.append(dg.AssetMaterialization(model.asset_key, metadata=metadata))
        else:
            window = f"{model.window[0]}..{model.window[1]}"
            events += [
                dg.AssetMaterialization(model.asset_key, partition=p, metadata={**metadata, "window": window})
                for p in model.partitions()
            ]
    if cycle.publication is not None:
        seconds = {k: round(v, 3) for k, v in cycle.seconds.items()}
        metadata = {**publication_metadata(cycle.publication), "cycle_seconds": dg.MetadataValue.json(seconds)}
        events.append(dg.AssetMaterialization(SERVING_SNAPSHOT, metadata={**metadata, **stamp}))
    return events
