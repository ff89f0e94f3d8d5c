"""Live mode in Dagster: `live_mode_job` runs the loop, `keep_live_mode_running` keeps one run going.

The switch is the sensor's status, stored in the Dagster instance: off by default, on with the UI's
toggle or `dagster sensor start keep_live_mode_running` (`make demo` does this). It is Dagster's
own on/off for automation, it shows in the UI with every tick's reason, it survives restarts,
and flipping it needs no restart of the code location (an environment variable would).

- On: each tick, unless a live_mode_job run is queued or running (or `redset live` runs on the
  same data folder), it requests one. It waits while a batch raw dump is in flight (one
  consumer of the group at a time) and for REDSET_LIVE_RETRY_SECONDS (60) after a live run failed.
- Off: the running live_mode_job run sees it within a cycle and ends after that cycle.
- Terminating the run (UI, `dagster run terminate`) also ends it after its current cycle; with
  the sensor still on, a new run starts at the next tick.

The op holds no pool: the warehouse's writer lock (warehouse/lock.py), taken once per cycle,
keeps it and the batch writers apart, so a backfill runs beside live mode.
"""

# No `from __future__ import annotations`: Dagster inspects the op's `context` annotation.
import threading
import time

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.live.stopping import stop_on_signals
from pipeline_assets.live.switch import LIVE_JOB, running_loop
from pipeline_assets.raw.dump.asset import raw_dump_in_flight
from pipeline_assets.runtime.runs import run_in_flight
from pipeline_assets.runtime.workers import fail_dead_runs

LIVE_SENSOR = "keep_live_mode_running"
SWITCH_CHECK_S = 5.0  # how often the run reads its sensor's status


def sensor_switched_off(instance: dg.DagsterInstance) -> bool:
    """Whether keep_live_mode_running was switched off (a stored STOPPED state; no state: never
    switched, e.g. a run launched by hand, which then runs until terminated)."""
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType  # no public reader

    if instance.schedule_storage is None:  # an in-memory instance (tests) keeps no sensor states
        return False
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return any(s.name == LIVE_SENSOR and s.status == InstigatorStatus.STOPPED for s in states)


def _switch_watch(instance: dg.DagsterInstance):
    """keep_going() for the loop: a reason to stop once the sensor is off, read every few seconds."""
    checked = {"at": 0.0}

    def keep_going() -> str | None:
        if time.monotonic() - checked["at"] < SWITCH_CHECK_S:
            return None
        checked["at"] = time.monotonic()
        return f"sensor {LIVE_SENSOR} was switched off" if sensor_switched_off(instance) else None

    return keep_going


class LiveModeConfig(dg.Config):
    """Run config of live_mode_job (the sensor's runs take the defaults)."""

    # After a topic reset: start a new generation instead of stopping (raw/dump/generation.py), as
    # raw_queries' new_generation does. For one run, set by hand.
    new_generation: bool = False


@dg.op(
    description="Live mode: consume Kafka into the raw zone, rebuild the touched days' dbt models and the "
    "all-time marts with a warm dbt, publish the serving snapshot, report the materializations; in cycles, "
    "until the run is terminated or keep_live_mode_running is switched off.",
)
def run_live_mode(context: dg.OpExecutionContext, kafka: KafkaResource, config: LiveModeConfig):
    # Imported here: the loop brings dbt's runner (seconds of imports), which every run worker and
    # code server would otherwise load although only this op uses it.
    from pipeline_assets.live.loop import LiveLoop

    stop = threading.Event()
    where = f"{LIVE_JOB} run {context.run_id}"
    loop = LiveLoop(context.instance, stop, where=where, log=context.log, kafka=kafka,
                    keep_going=_switch_watch(context.instance), new_generation=config.new_generation)  # fmt: skip
    cycles = loop.cycles()
    try:
        while True:
            # Signals stop the loop gracefully while a cycle runs; Dagster restores its own handlers
            # around each yield, where a termination ends the run between two whole cycles.
            with stop_on_signals(stop, context.log.info):
                events = next(cycles, None)
            if events is None:
                break
            # Stored now, as the run's, in one go: logged events are flushed with the next yield,
            # and a termination can end the op at any yield.
            *logged, last = events
            for event in logged:
                context.log_event(event)
            yield last
    finally:
        cycles.close()  # ended between cycles (e.g. terminated at a yield): release the live lock now
    if stop.is_set():
        # Terminated: the cycle in progress was finished; end as Dagster ends an interrupted step.
        raise KeyboardInterrupt(f"live mode stopped cleanly after {loop.summary.cycles} cycles")


@dg.job(name=LIVE_JOB, description="Live mode's long-running loop (kept running by keep_live_mode_running).")
def live_mode_job() -> None:
    run_live_mode()


@dg.sensor(
    name=LIVE_SENSOR,
    job=live_mode_job,
    minimum_interval_seconds=settings.sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="The live-mode switch: while on, keeps exactly one live_mode_job run going (and the batch "
    "Kafka dump and marts sensors stand aside); switched off, the live run ends after its current cycle.",
)
def keep_live_mode_running(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    instance = context.instance
    fail_dead_runs(instance, context.log)  # a live run whose worker died is in flight no more
    running = run_in_flight(instance, LIVE_JOB)
    if running is not None:
        return dg.SkipReason(f"{LIVE_JOB} run {running.run_id} is {running.status.value.lower()}")
    loop = running_loop()
    if loop is not None:
        return dg.SkipReason(f"live mode already runs outside Dagster: pid {loop['pid']} ({loop.get('where')})")
    dump = raw_dump_in_flight(instance)
    if dump is not None:
        return dg.SkipReason(f"waiting for raw dump run {dump.run_id}: one consumer of the group at a time")
    last = instance.get_runs(filters=dg.RunsFilter(job_name=LIVE_JOB), limit=1)
    if last and last[0].status == dg.DagsterRunStatus.FAILURE:
        record = instance.get_run_record_by_id(last[0].run_id)
        ended = record.end_time if record else None
        retry = settings.bound("live_retry_seconds")
        if ended and time.time() - ended < retry:
            return dg.SkipReason(f"{LIVE_JOB} run {last[0].run_id} failed; next try {retry}s after it")
    launches = int(context.cursor or 0) + 1
    context.update_cursor(str(launches))
    return dg.RunRequest(run_key=f"live-{launches}")
