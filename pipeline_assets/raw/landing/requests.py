"""What landing_file_sensor requests for the files waiting in the landing folder.

A new (or changed) file is only noted on the tick that first sees it; it gets a run, keyed by
name, size and mtime, on a later tick that finds the same size and mtime (a writer still
appending changes them, and the file waits). A file still there after its
run failed or was cancelled (killed) gets another run, keyed '<key>#retry-<n>', up to
LANDING_RETRIES times; then one alert says the sensor gave up on it, and it waits until it changes.
A file whose run is gone (deleted) is asked for with the same key again: the daemon drops the
request if the run does exist.
"""

from pathlib import Path
from typing import Any

import dagster as dg

from pipeline_assets.alerts import send_alert
from pipeline_assets.raw.landing import folder as landing_folder
from pipeline_assets.runtime.runs import ENDED_BADLY, retry_run_key, run_with_key

LANDING_SENSOR = "landing_file_sensor"  # its name in sensors.py: the daemon tags its runs with it
LANDING_RETRIES = 3


def landing_requests(
    instance: dg.DagsterInstance, folder: Path, seen: dict[str, list[int]], log: Any
) -> tuple[list[dg.RunRequest], dict[str, list[int]]]:
    """The runs to request this tick, and the next cursor (files that left the folder drop out)."""
    requests: list[dg.RunRequest] = []
    cursor: dict[str, list[int]] = {}
    for path in landing_folder.waiting_files(folder, settle_seconds=landing_folder.SETTLE_SECONDS):
        request, cursor[path.name] = file_request(instance, path, seen.get(path.name, []), log)
        requests += [request] if request else []
    return requests, cursor


def file_request(
    instance: dg.DagsterInstance, path: Path, before: list[int], log: Any
) -> tuple[dg.RunRequest | None, list[int]]:
    """What one waiting file needs this tick, and what the cursor keeps of it:
    [size, mtime_ns, retries, gave_up]; retries -1: seen once, not requested yet (a cursor of
    older versions holds [size, mtime_ns], requested)."""
    state = list(landing_folder.file_state(path))

    def request(retries: int) -> dg.RunRequest:
        key = retry_run_key(landing_folder.run_key(path), retries)
        return dg.RunRequest(run_key=key, run_config=landing_folder.run_config(path))

    if before[:2] != state:  # new, or changed since the last tick: wait for one that sees it unchanged
        return None, [*state, -1, 0]
    retries, gave_up = (before + [0, 0])[2:4]
    if retries < 0:  # unchanged across two ticks
        return request(0), [*state, 0, 0]
    if gave_up:
        return None, before
    run = run_with_key(instance, LANDING_SENSOR, retry_run_key(landing_folder.run_key(path), retries))
    if run is None:  # gone
        return request(retries), before
    if run.status not in ENDED_BADLY:  # in flight, or done and the file has left
        return None, before
    if retries < LANDING_RETRIES:
        return request(retries + 1), [*state, retries + 1, 0]
    send_alert(
        "landing_file_abandoned",
        f"{path} is still in the landing folder after {retries + 1} runs, the last one "
        f"{run.status.value}; no more runs are requested until the file changes (fix it, then touch it)",
        log,
        file=path.name,
        run_id=run.run_id,
    )
    return None, [*state, retries, 1]
