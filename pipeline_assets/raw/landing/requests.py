"""What landing_file_sensor requests for the files waiting in the landing folder (or, for a landing
zone on S3, the objects waiting at the top of its prefix: raw/landing/remote.py's listing).

A new (or changed) file is only noted on the tick that first sees it; it gets a run, keyed by
name, size and mtime, on a later tick that finds the same size and mtime (a writer still
appending changes them, and the file waits). A file still there after its
run failed or was cancelled (killed) gets another run, keyed '<key>#retry-<n>', up to
LANDING_RETRIES times; then one alert says the sensor gave up on it, and it waits until it changes.
A file whose run is gone (deleted) is asked for with the same key again: the daemon drops the
request if the run does exist. An object on S3 is listed only once whole, and its run gets its
name only (the run fetches it); the same two ticks and keys (its size and LastModified) apply.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.raw.landing import folder as landing_folder
from pipeline_assets.raw.landing import remote
from pipeline_assets.runtime.runs import ENDED_BADLY, retry_run_key, run_with_key
from pipeline_assets.storage import filesystem
from pipeline_assets.storage.location import is_remote

LANDING_SENSOR = "landing_file_sensor"  # its name in sensors.py: the daemon tags its runs with it
LANDING_RETRIES = 3


@dataclass(frozen=True)
class Waiting:
    """A file waiting in the landing folder, or an object in the landing prefix, as one tick saw it."""

    name: str
    state: tuple[int, int]  # size, mtime (LastModified on S3) in ns
    run_config: dict[str, Any]

    @property
    def run_key(self) -> str:
        return f"{self.name}:{self.state[0]}:{self.state[1]}"


def landing_location() -> Path | str:
    """The landing folder, or the landing zone's s3:// URL (its storage checked: one line if it does not answer)."""
    url = settings.zone_url("landing")
    if is_remote(url):
        filesystem.check(url)
        return url
    return settings.landing_dir()


def waiting(where: Path | str) -> list[Waiting]:
    """What waits in the landing folder or prefix `where`, oldest first."""
    if isinstance(where, str):
        return [
            Waiting(name, (size, mtime_ns), {"ops": {"landing_queries": {"config": {"path": name}}}})
            for name, size, mtime_ns in remote.waiting(where)
        ]
    return [
        Waiting(path.name, landing_folder.file_state(path), landing_folder.run_config(path))
        for path in landing_folder.waiting_files(where, settle_seconds=landing_folder.SETTLE_SECONDS)
    ]


def landing_requests(
    instance: dg.DagsterInstance, where: Path | str, seen: dict[str, list[int]], log: Any
) -> tuple[list[dg.RunRequest], dict[str, list[int]]]:
    """The runs to request this tick, and the next cursor (files that left the folder drop out)."""
    requests: list[dg.RunRequest] = []
    cursor: dict[str, list[int]] = {}
    for file in waiting(where):
        request, cursor[file.name] = file_request(instance, file, seen.get(file.name, []), log, where)
        requests += [request] if request else []
    return requests, cursor


def file_request(
    instance: dg.DagsterInstance, file: Waiting, before: list[int], log: Any, where: Path | str
) -> tuple[dg.RunRequest | None, list[int]]:
    """What one waiting file needs this tick, and what the cursor keeps of it:
    [size, mtime_ns, retries, gave_up]; retries -1: seen once, not requested yet (a cursor of
    older versions holds [size, mtime_ns], requested)."""
    state = list(file.state)

    def request(retries: int) -> dg.RunRequest:
        return dg.RunRequest(run_key=retry_run_key(file.run_key, retries), run_config=file.run_config)

    if before[:2] != state:  # new, or changed since the last tick: wait for one that sees it unchanged
        return None, [*state, -1, 0]
    retries, gave_up = (before + [0, 0])[2:4]
    if retries < 0:  # unchanged across two ticks
        return request(0), [*state, 0, 0]
    if gave_up:
        return None, before
    run = run_with_key(instance, LANDING_SENSOR, retry_run_key(file.run_key, retries))
    if run is None:  # gone
        return request(retries), before
    if run.status not in ENDED_BADLY:  # in flight, or done and the file has left
        return None, before
    if retries < LANDING_RETRIES:
        return request(retries + 1), [*state, retries + 1, 0]
    send_alert(
        "landing_file_abandoned",
        f"{where}/{file.name} is still in the landing folder after {retries + 1} runs, the last one "
        f"{run.status.value}; no more runs are requested until the file changes (fix it, then touch it)",
        log,
        file=file.name,
        run_id=run.run_id,
    )
    return None, [*state, retries, 1]
