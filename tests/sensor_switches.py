"""Sensors started or stopped on a Dagster instance, as `dagster sensor start|stop` would, without
the CLI's own code server: the code location is loaded in this process (once per pytest process),
where the CLI would start a process that loads the definitions again.

The daemon finds a sensor's stored state by its selector (code location, repository and sensor
names), not by where the code was loaded from, so a state stored here is the one `dagster dev`'s
daemon reads: the location name must be workspace.yaml's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin  # no public in-process loader
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

ROOT = Path(__file__).resolve().parents[1]


def switch_sensors(instance: dg.DagsterInstance, **running: bool) -> None:
    """Start (True) or stop (False) each named sensor of workspace.yaml's code location."""
    (entry,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    module = entry["python_module"]
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=module["module_name"], working_directory=str(ROOT))
    origin = InProcessCodeLocationOrigin(target, location_name=module["location_name"])
    with origin.create_location(instance) as location:
        (repository,) = location.get_repositories().values()
        for name, start in running.items():
            sensor = repository.get_sensor(name)
            if start:
                instance.start_sensor(sensor)
            else:
                instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
