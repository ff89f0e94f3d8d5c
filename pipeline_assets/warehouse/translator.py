"""The one translator of the dbt project: asset keys, groups, partition mappings and automation of
every dbt model and source."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator


# The all-time marts follow the daily partitions: rebuilt once a daily partition they read has
# changed and no daily run is still going. Not eager(): that waits until every daily partition
# exists (days without data never will) and builds missing assets before any daily table exists.
AFTER_DAILY_PARTITIONS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after the daily partitions change")


def is_daily(dbt_resource_props: Mapping[str, Any]) -> bool:
    return "daily" in (dbt_resource_props.get("tags") or [])


class RedsetDbtTranslator(DagsterDbtTranslator):
    """Asset keys, groups, partition mappings and automation of the dbt models."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)  # meta.dagster.asset_key
        return dg.AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return None  # the raw assets own their group
        if dbt_resource_props["resource_type"] == "exposure":
            return "dashboards"  # exposures.py
        return "staging" if "staging" in dbt_resource_props["fqn"] else "marts"

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> dg.PartitionMapping | None:
        # A day's stress index looks back 24 hours, into the previous day's clean rows.
        if dbt_resource_props["name"] == "stress_index" and dbt_parent_resource_props["name"] == "clean_queries":
            return dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0)
        return None

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] == "model" and not is_daily(dbt_resource_props):
            return AFTER_DAILY_PARTITIONS
        return None


translator = RedsetDbtTranslator()
