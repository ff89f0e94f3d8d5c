"""A live cycle's materializations, as Dagster events under the keys the asset definitions use.

Per cycle: `raw_queries` (the raw dump's own metadata: rows, arrival dates, offsets consumed and
committed), each daily dbt model once per partition (day) it rebuilt, each all-time mart, then
`serving_snapshot`. So the asset lineage UI, each asset's history and partition status, and what
`dagster asset materialize` sees stay true while no per-batch run exists. A background slice
(background.py) reports its models alike, and `serving_snapshot` after an insights pass.

The live_mode_job run yields them from its op, so they belong to the run; `redset live` reports
them to DAGSTER_HOME's instance as runless events (`report_runless`). The dbt tests' check
evaluations always go to the instance, runless (loop.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from pipeline_assets.live.background import SliceResult
from pipeline_assets.live.build import ModelRun
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
    stamp = _stamp(cycle.session, cycle.number)
    events = []
    if cycle.stats.messages:
        committed = {str(p): last + 1 for p, last in sorted(cycle.stats.last_offset.items())}
        metadata = {**dump_metadata(cycle.options, cycle.stats), "committed_offsets": dg.MetadataValue.json(committed)}
        events.append(dg.AssetMaterialization(RAW_QUERIES, metadata={**metadata, **stamp}))
    events += _model_events(cycle.build.models if cycle.build else [], stamp)
    if cycle.publication is not None:
        seconds = {k: round(v, 3) for k, v in cycle.seconds.items()}
        metadata = {**publication_metadata(cycle.publication), "cycle_seconds": dg.MetadataValue.json(seconds)}
        events.append(dg.AssetMaterialization(SERVING_SNAPSHOT, metadata={**metadata, **stamp}))
    return events


def slice_events(done: SliceResult, session: str, cycle: int) -> list[dg.AssetMaterialization]:
    """What a background slice (background.py) materialized, stamped with the cycle it followed."""
    stamp = {**_stamp(session, cycle), "live_slice": done.slice.label}
    events = _model_events(done.build.models if done.build else [], stamp)
    if done.publication is not None:
        metadata = {**publication_metadata(done.publication), "slice_seconds": dg.MetadataValue.float(round(done.seconds, 3))}
        events.append(dg.AssetMaterialization(SERVING_SNAPSHOT, metadata={**metadata, **stamp}))
    return events


def _stamp(session: str, cycle: int) -> dict[str, object]:
    return {"live_cycle": dg.MetadataValue.int(cycle), LIVE_SESSION_METADATA: session}


def _model_events(models: Iterable[ModelRun], stamp: dict[str, object]) -> list[dg.AssetMaterialization]:
    """Each model that ran well: an all-time mart once, a daily model once per partition (day)."""
    events = []
    for model in models:
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
    return events
