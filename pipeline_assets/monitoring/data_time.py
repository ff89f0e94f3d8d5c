"""Which assets hold everything Kafka has, and the observations that carry that data time.

An asset is current when it was built, no build of it failed, is in flight or is stuck since its
last one (a daily asset: nor the last build of any partition, since a later partition's build
would hide an older one that failed), each parent is current (or was never built nor tried), and its last build came after
each parent's (the automation conditions' rule: a parent changed since means a build is owed). A
parent with its own cadence (`served.CADENCES`) owes nothing while its last build is within it.
The caller has seen no Kafka lag and gives the other known debts (`owed`, e.g. a waiting landing
file). For each watched asset that is current, an observation (not a materialization, so the
asset's history lists real builds only) records `dagster/last_updated_timestamp` = now: the data
time that Dagster's last-update freshness checks read besides the last build's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import dagster as dg

# Read by dg.build_last_update_freshness_checks from observations (and materializations).
DATA_TIME = "dagster/last_updated_timestamp"
NEVER_BUILT = "never built"


def pending_build(instance: dg.DagsterInstance, key: dg.AssetKey, built: dg.EventLogRecord | None) -> str | None:
    """Why the asset's last planned build has not landed (its run failed, or is in flight or
    stuck), else None. A run that succeeded without it (an optional output skipped) owes nothing."""
    planned = instance.get_latest_planned_materialization_info(key)
    if planned is None or (built is not None and built.storage_id > planned.storage_id):
        return None
    run = instance.get_run_by_id(planned.run_id)
    status = run.status if run else None
    if status == dg.DagsterRunStatus.SUCCESS:
        return None
    if status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED, None):
        return f"its last build failed (run {planned.run_id}: {status.value if status else 'gone'})"
    return f"a build is in flight or stuck (run {planned.run_id}: {status.value})"


def failed_partitions(instance: dg.DagsterInstance, key: dg.AssetKey, partitions_def) -> str | None:
    """Which partitions' latest builds failed (Dagster's per-partition status), else None."""
    if partitions_def is None:
        return None
    keys = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    status = instance.get_status_by_partition(key, keys, partitions_def) or {}
    failed = sorted(k for k, s in status.items() if s == dg.AssetPartitionStatus.FAILED)
    if not failed:
        return None
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    return f"the last build of partition {', '.join(failed[:3])}{more} failed"


def owed_reasons(
    instance: dg.DagsterInstance, graph, cadences: Mapping[dg.AssetKey, timedelta], now: float,
    owed: Mapping[dg.AssetKey, str],
) -> dict[dg.AssetKey, str | None]:  # fmt: skip
    """Per asset of the graph, parents first: None when current, else why not."""
    keys = list(graph.toposorted_asset_keys)
    records = {r.asset_entry.asset_key: r for r in instance.get_asset_records(keys)}
    reasons: dict[dg.AssetKey, str | None] = {}
    for key in keys:
        last = records[key].asset_entry.last_materialization_record if key in records else None
        why = owed.get(key) or pending_build(instance, key, last) or failed_partitions(instance, key, graph.get(key).partitions_def)
        for parent in graph.get(key).parent_keys:
            if why is not None:
                break
            parent_why = reasons.get(parent)
            parent_last = records[parent].asset_entry.last_materialization_record if parent in records else None
            if parent_why == NEVER_BUILT:
                continue
            if parent_why is not None and not _within_cadence(parent_why, parent_last, cadences.get(parent), now):
                why = f"{parent.to_user_string()} is not current: {parent_why}"
            elif parent_last is not None and (last is None or last.storage_id < parent_last.storage_id):
                why = f"{parent.to_user_string()} changed since its last build"
        reasons[key] = why if why is not None or last is not None else NEVER_BUILT
    return reasons


def _within_cadence(why: str, last: dg.EventLogRecord | None, cadence: timedelta | None, now: float) -> bool:
    """A parent rebuilt on its own clock, whose only debt is newer parents, within that clock."""
    return bool(cadence) and last is not None and why.endswith("changed since its last build") and (
        now - last.timestamp < cadence.total_seconds()
    )


def report_observations(
    instance: dg.DagsterInstance, graph, watched: Mapping[dg.AssetKey, timedelta], now: float,
    older_than_s: float, owed: Mapping[dg.AssetKey, str],
) -> tuple[list[dg.AssetKey], dict[dg.AssetKey, str]]:  # fmt: skip
    """Observe each watched asset that is current and whose data time is older than `older_than_s`;
    return those observed and, for the built watched assets that are not current, why."""
    reasons = owed_reasons(instance, graph, watched, now, owed)
    observed, behind = [], {}
    for key in graph.toposorted_asset_keys:
        if key not in watched:
            continue
        if reasons[key] is not None:
            if reasons[key] != NEVER_BUILT:  # nothing to judge yet; its check says so
                behind[key] = reasons[key]
            continue
        if now - data_time(instance, key) < older_than_s:
            continue
        instance.report_runless_asset_event(
            dg.AssetObservation(
                key, metadata={DATA_TIME: dg.MetadataValue.timestamp(now), "lag": 0,
                               "why": "no Kafka lag, nothing owed, failing or in flight: the data is current"},
            )
        )  # fmt: skip
        observed.append(key)
    return observed, behind


def data_time(instance: dg.DagsterInstance, key: dg.AssetKey) -> float:
    """The later of the last build's and the last observation's data time, as Dagster's freshness
    check reads them: DATA_TIME when the event carries it, else a build's own time (0 if neither)."""
    entry = instance.get_asset_records([key])
    if not entry:
        return 0.0
    built, seen = entry[0].asset_entry.last_materialization_record, entry[0].asset_entry.last_observation_record
    times = [_event_data_time(built, built.timestamp) if built else 0.0, _event_data_time(seen, 0.0) if seen else 0.0]
    return max(times)


def _event_data_time(record: dg.EventLogRecord, default: float) -> float:
    value = record.asset_event.metadata.get(DATA_TIME) if record.asset_event else None
    return float(value.value) if value is not None else default
