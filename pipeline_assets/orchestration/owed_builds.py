"""Daily partitions that still owe a successful build_marts_job run: retried, backed off, then stale.

The sensor build_marts_on_new_raw_batches keeps them in its cursor. A partition enters when a raw
batch reports one of its arrival dates, and leaves only when a build_marts_job run covering it
succeeds that was created after its newest data was seen: the sensor's run, the schedule's and a
backfill launched by hand all count. Each failed or canceled build counts as an attempt; the next
automatic one waits REDSET_BUILD_RETRY_SECONDS * 2^(attempts-1) (capped at an hour). After
REDSET_BUILD_MAX_ATTEMPTS failures the partition is stale: no more builds of its own, but it goes
along with the next build that runs anyway (a new batch's, the daily schedule's), the sensor's
tick names it, and one `stale_marts` alert goes out per episode.

Not Dagster's run retries (tag dagster/max_retries): the daemon re-executes a failed run at once,
with no back-off (a broken model fails every retry within a minute), only if dagster.yaml has
`run_retries: enabled: true` (a bare `dagster dev` has not), and the dates are forgotten after.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.alerts import send_alert
from pipeline_assets.warehouse.partitions import run_partitions

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
MAX_BACKOFF_SECONDS = 3600.0
# Finished runs are read again for this long: a run's update time is the time of its last event,
# which another process may store a little later than a run that ended after it.
REREAD_SECONDS = 300.0
# A requested run exists by the next tick (queued counts as in flight). One still missing after
# this long never came (the daemon dropped the request): that counts as a failed attempt.
LOST_REQUEST_SECONDS = 600.0
# The instance's key-value store holds the stale partitions for the schedule, which cannot read
# the sensor's cursor.
STALE_KEY = "redset/stale_marts"


@dataclass
class Owed:
    """One partition's debt (times in Unix seconds)."""

    since: float  # its first unbuilt data was seen; builds created before are not its attempts
    seen: float  # its newest data was seen; only a build created after that pays the debt
    attempts: int = 0  # failed builds since `since`
    failed_at: float = 0.0  # end of the last failed build counted: the back-off starts there
    failed_created: float = 0.0  # creation of that build: each failed build counts once
    requested: float | None = None  # when the sensor asked for it; None once a run answered


def backoff_seconds(attempts: int) -> float:
    return min(settings.build_retry_seconds() * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def utc_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class OwedBuilds:
    owed: dict[str, Owed] = field(default_factory=dict)
    runs_read_until: float = 0.0  # update time of the newest finished build read
    requests: int = 0  # ticks that requested runs: keeps run keys unique across retries
    alerted: bool = False  # this stale episode has had its alert

    @classmethod
    def from_cursor(cls, cursor: dict[str, Any], now: float) -> OwedBuilds:
        state = cls(
            owed={day: Owed(**entry) for day, entry in cursor.get("owed", {}).items()},
            runs_read_until=cursor.get("runs_read_until", now),
            requests=cursor.get("requests", 0),
            alerted=cursor.get("alerted", False),
        )
        state.add(cursor.get("pending", []), now)  # the cursor's form before retries
        return state

    def to_cursor(self) -> dict[str, Any]:
        return {
            "owed": {day: asdict(entry) for day, entry in sorted(self.owed.items())},
            "runs_read_until": self.runs_read_until,
            "requests": self.requests,
            "alerted": self.alerted,
        }

    def add(self, partitions: Iterable[str], now: float) -> None:
        """New data for these partitions."""
        for day in partitions:
            if day in self.owed:
                self.owed[day].seen = now
            else:
                self.owed[day] = Owed(since=now, seen=now)

    def record_run(self, run: dg.DagsterRun, created: float, ended: float) -> None:
        """A finished build: pays the debts it covers, or counts an attempt. Reading the same run
        twice changes nothing."""
        for day in run_partitions(run.tags):
            entry = self.owed.get(day)
            if entry is None:
                continue
            answers_request = entry.requested is not None and created >= entry.requested
            if run.status == dg.DagsterRunStatus.SUCCESS:
                if created >= entry.seen:
                    del self.owed[day]
                    continue
            elif created >= entry.since and created > entry.failed_created:
                entry.attempts += 1
                entry.failed_at, entry.failed_created = ended, created
            if answers_request:
                entry.requested = None

    def read_finished_builds(self, instance: dg.DagsterInstance, job_name: str) -> None:
        after = datetime.fromtimestamp(self.runs_read_until - REREAD_SECONDS, timezone.utc)
        records = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=FINISHED, updated_after=after))
        for record in sorted(records, key=lambda r: r.update_timestamp):
            updated = record.update_timestamp.timestamp()
            self.record_run(record.dagster_run, record.create_timestamp.timestamp(), record.end_time or updated)
            self.runs_read_until = max(self.runs_read_until, updated)

    def forget_lost_requests(self, now: float) -> None:
        """Call only while no build is in flight."""
        for entry in self.owed.values():
            if entry.requested is not None and now - entry.requested > LOST_REQUEST_SECONDS:
                entry.attempts, entry.failed_at, entry.requested = entry.attempts + 1, now, None

    def stale(self) -> list[str]:
        return sorted(d for d, e in self.owed.items() if e.attempts >= settings.build_max_attempts())

    def waiting(self) -> list[str]:
        """Owed and not requested."""
        return sorted(d for d, e in self.owed.items() if e.requested is None)

    def retry_at(self, entry: Owed) -> float:
        return entry.failed_at + backoff_seconds(entry.attempts)

    def to_request(self, now: float) -> list[str]:
        """Every waiting partition, as soon as one of them is due: new data, or a failed build
        whose back-off is over. So a build always takes the stale and backing-off ones along."""
        limit = settings.build_max_attempts()
        waiting = [e for e in self.owed.values() if e.requested is None]
        due = any(e.attempts == 0 or (e.attempts < limit and now >= self.retry_at(e)) for e in waiting)
        return self.waiting() if due else []

    def mark_requested(self, partitions: Iterable[str], now: float) -> None:
        for day in partitions:
            self.owed[day].requested = now
        self.requests += 1

    def describe(self) -> list[str]:
        """What the debts wait for, for the sensor's skip reason."""
        parts = []
        requested = [d for d, e in self.owed.items() if e.requested is not None]
        if requested:
            parts.append(f"{len(requested)} date(s) requested, waiting for their run")
        limit = settings.build_max_attempts()
        backing_off = [e for e in self.owed.values() if e.requested is None and 0 < e.attempts < limit]
        if backing_off:
            next_retry = min(self.retry_at(e) for e in backing_off)
            parts.append(f"{len(backing_off)} date(s) failed to build, next retry at {utc_time(next_retry)}")
        stale = self.stale()
        if stale:
            parts.append(f"stale: {', '.join(stale)} (failed {limit} builds; they go along with the next build)")
        return parts

    def alert_new_staleness(self, log: Any, job_name: str) -> None:
        """One alert when partitions go stale, none more until none is stale."""
        stale = self.stale()
        if stale and not self.alerted:
            send_alert(
                "stale_marts",
                f"{len(stale)} daily partition(s) failed {settings.build_max_attempts()} builds; no more "
                "automatic retries: they go along with the next build (new raw batch, daily schedule, "
                "or a backfill by hand)",
                log,
                job=job_name,
                dates=",".join(stale),
            )
        self.alerted = bool(stale)


def publish_stale(instance: dg.DagsterInstance, stale: list[str]) -> None:
    value = json.dumps(stale)
    storage = instance.daemon_cursor_storage
    if storage.get_cursor_values({STALE_KEY}).get(STALE_KEY, "[]") != value:
        storage.set_cursor_values({STALE_KEY: value})


def stale_partitions(instance: dg.DagsterInstance) -> list[str]:
    """The stale partitions the sensor last published."""
    value = instance.daemon_cursor_storage.get_cursor_values({STALE_KEY}).get(STALE_KEY)
    return json.loads(value) if value else []
