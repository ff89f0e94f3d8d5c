"""Run keys of sensor requests: a numbered key for a retry, and the run a key started.

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
