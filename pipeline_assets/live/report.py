"""A live cycle's materializations, as Dagster events under the keys the asset definitions use.

Per cycle: `raw_queries` (the raw dump's own metadata: rows, arrival dates, offsets consumed and
committed), each daily dbt model once per partition (day) it rebuilt, each all-time mart, then
`serving_snapshot`. So the asset lineage UI, each asset's history and partition status, and what
`dagster asset materialize` sees stay true while no per-batch run exists.

The live_mode_job run yields them from its op, so they belong to the run; `redset live` reports
them to DAGSTER_HOME's instance as runless events (`report_runless`). The dbt tests' check
evaluations always go to the instance, runless (loop.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from pipeline_assets.live.cycle import CycleResult
from pipeline_assets.live.switch import LIVE_SESSION_METADATA
from pipeline_assets.raw.dump.asset import dump_metadata
from pipeline_assets.serving.snapshot import publication_metadata

RAW_QUERIES = dg.AssetKey("raw_queries")
SERVING_SNAPSHOT = dg.AssetKey("serving_snapshot")


def report_runless(instance: dg.DagsterInstance, events: Iterable[dg.AssetMaterialization]) -> None:
    """Events of live mode outside a run (`redset live`): to the instance, runless."""
    for event in events:
        instance.report_runless_asset_event(event)


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
