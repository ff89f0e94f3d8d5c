"""Assembles the code location: assets, checks, sensors, schedules and resources. Nothing else."""

import dagster as dg

# Each stage registers its pieces below: source -> kafka -> raw -> dbt -> serving.
assets: list = []
asset_checks: list = []
sensors: list = []
schedules: list = []
jobs: list = []
resources: dict = {}

defs = dg.Definitions(
    assets=assets,
    asset_checks=asset_checks,
    sensors=sensors,
    schedules=schedules,
    jobs=jobs,
    resources=resources,
)
