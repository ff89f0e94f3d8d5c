"""One live cycle: consume -> (writer lock: dbt daily, dbt all-time, publish) -> owed dates settled.

1. consume.py takes what Kafka has into the raw zone, durable and committed; the arrival dates
   it touched were recorded before the commit (raw/owed_dates.py). The cycle takes live mode's
   records, its own and those of a cycle that died after its commit, into owed.json (state.py),
   then deletes them: on disk all along, before any model runs.
2. Under the warehouse's one-writer lock (warehouse/lock.py; released between cycles, so batch
   writers get their turn): build.py runs the daily models for the owed dates, then the all-time
   marts, the insights models left out (background.py runs them in slices between cycles), and
   the serving snapshot is published (serving/snapshot.py `publish`) when a model was
   rebuilt. A failed model does not freeze the dashboards: what did build is published, and the
   dates stay owed for the next cycle.

Nothing owed and nothing consumed: no dbt and no publish, the cycle costs a look at the offsets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

from pipeline_assets.live.build import BuildResult, run_models
from pipeline_assets.live.consume import LiveConsumer
from pipeline_assets.live.state import Owed
from pipeline_assets.live.warm_dbt import WarmDbt
from pipeline_assets.raw import owed_dates
from pipeline_assets.raw.dump.options import DumpOptions, DumpStats
from pipeline_assets.serving.snapshot import Publication, publish
from pipeline_assets.warehouse.lock import warehouse_writer


@dataclass
class CycleResult:
    session: str  # one live process
    number: int
    options: DumpOptions
    stats: DumpStats
    built_days: set[date] = field(default_factory=set)
    build: BuildResult | None = None
    publication: Publication | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # consume, dbt_daily, dbt_all_time, publish, report

    @property
    def errors(self) -> list[str]:
        return self.build.errors if self.build else []

    def summary(self) -> str:
        """One log line: what the cycle did and where its time went."""
        days = sorted(self.built_days)
        what = f"{self.stats.messages:,} messages, {self.stats.summary.rows:,} rows"
        if days:
            what += f"; built {days[0]}" + (f"..{days[-1]} ({len(days)} days)" if len(days) > 1 else "")
        if self.publication is not None:
            what += f"; published {self.publication.rows.get('query_metrics', 0):,} query_metrics rows"
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        return f"live cycle {self.number}: {what} ({timing})" + (f"; FAILED: {self.errors}" if self.errors else "")


def run_cycle(session: str, number: int, consumer: LiveConsumer, dbt: WarmDbt, owed: Owed, log=None) -> CycleResult:
    """Consume, then build and publish what is owed; `owed` is updated (and saved) in place."""
    started = time.monotonic()
    options, stats = consumer.take(batch_id=f"{owed_dates.LIVE_PREFIX}{session}-{number}")
    cycle = CycleResult(session, number, options, stats)
    cycle.seconds["consume"] = time.monotonic() - started
    take_recorded_dates(owed)
    days = set(owed.every_cycle)
    if not days:
        return cycle
    cycle.built_days = set(days)
    with warehouse_writer(f"live cycle {number} (session {session})", log=log):
        cycle.build = run_models(dbt, days, with_insights=False)
        cycle.seconds["dbt_daily"] = cycle.build.daily_seconds
        cycle.seconds["dbt_all_time"] = cycle.build.all_time_seconds
        if any(m.ok for m in cycle.build.models):
            started = time.monotonic()
            cycle.publication = publish()
            cycle.seconds["publish"] = time.monotonic() - started
    if cycle.build.ok:
        owed.every_cycle -= days
        owed.save()
    return cycle


def take_recorded_dates(owed: Owed) -> None:
    """Live mode's owed-dates records (this cycle's, and a dead cycle's) into `owed`, saved, then deleted."""
    records = owed_dates.pending(live=True)
    if records:
        owed.add({d for r in records for d in r.dates})
        owed.save()  # saved before the records go: a crash in between only adds them again
        owed_dates.settle(r.name for r in records)
