"""Lookups in Dagster's run records that every stage's guard uses: the run in flight for a job,
the run a sensor's run key started, and the numbered key of a retry.

Dagster runs a sensor's run_key once: a request with a key it has seen (a run with that key
and the sensor's name in its tags) is dropped. Asking again after a failed run takes a new key.
"""

import dagster as dg

ENDED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def retry_run_key(key: str, retries: int) -> str:
    """`key` for a first request, `key#retry-<n>` for the n-th retry."""
    return f"{key}#retry-{retries}" if retries else key


def run_with_key(instance: dg.DagsterInstance, sensor_name: str, run_key: str) -> dg.DagsterRun | None:
    """The run `sensor_name` started for `run_key` (the tags the daemon sets and dedupes on), or None."""
    tags = {"dagster/run_key": run_key, "dagster/sensor_name": sensor_name}
    runs = instance.get_runs(filters=dg.RunsFilter(tags=tags), limit=1)
    return runs[0] if runs else None


IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def run_in_flight(instance: dg.DagsterInstance, job_name: str, asset: dg.AssetKey | None = None) -> dg.DagsterRun | None:
    """A queued or running run of `job_name`, or of any job that materialises `asset`."""
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=100):
        if run.job_name == job_name or (asset is not None and asset in (run.asset_selection or ())):
            return run
    return None
