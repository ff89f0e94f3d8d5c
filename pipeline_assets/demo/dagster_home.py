"""The demo's Dagster instance: DAGSTER_HOME with the project's dagster.yaml, and the environment
Dagster's processes run in."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from pipeline_assets import settings

# Sensors tick every 3 s instead of the default 30 s: a batch waits for two sensor ticks (the
# raw dump's, then build_marts_job's) on its way to the dashboards.
DEMO_SENSOR_INTERVAL = "3"
# The project's Dagster instance settings (the `duckdb` pool limited to 1).
DAGSTER_YAML_TEMPLATE = settings.PROJECT_ROOT / "scripts" / "dagster.yaml"


def demo_live() -> bool:
    """The demo runs live mode (the sensor keep_live_mode_running on) unless REDSET_DEMO_LIVE=0,
    which gives the batch path: a raw-dump run and a build_marts_job run per batch."""
    return os.environ.get("REDSET_DEMO_LIVE", "1").strip() != "0"


def live_switch_args() -> list[str]:
    """`dagster sensor start|stop keep_live_mode_running`: the switch is stored in the instance, so
    a demo without live mode also switches off what an earlier demo switched on."""
    from pipeline_assets.live.job import LIVE_SENSOR

    return ["sensor", "start" if demo_live() else "stop", LIVE_SENSOR]


def dagster_home() -> Path:
    return Path(os.environ.get("REDSET_DEMO_DAGSTER_HOME") or settings.PROJECT_ROOT / ".dagster_home")


def prepare_dagster_home(env: dict[str, str]) -> None:
    """Make the instance folder and point `env` (the demo's children's environment) at it."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    # The project's instance settings, refreshed each time; the runs and event logs stay.
    shutil.copyfile(DAGSTER_YAML_TEMPLATE, home / "dagster.yaml")
    env["DAGSTER_HOME"] = str(home)
    # Dagster's processes find dbt and friends in this environment even when it is not activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("REDSET_SENSOR_INTERVAL", DEMO_SENSOR_INTERVAL)
