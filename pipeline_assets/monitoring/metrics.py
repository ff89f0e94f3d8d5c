"""The collector: the pipeline's figures in Prometheus' format, read from stored state on each scrape.

Nothing is counted in memory: Kafka's committed offsets and watermarks (kafka_state.py, read-only), the
dead-letter zone (dead_letter_counts.py), the snapshot's manifest and Dagster's run records
(run_counts.py) are read when Prometheus scrapes. The figures are therefore the pipeline's own,
whichever process serves them, and survive restarts. A source that cannot be read leaves its
metrics out of that scrape and is logged once, when it goes away; the others are still served.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline_assets import settings
from pipeline_assets.monitoring import kafka_state
from pipeline_assets.monitoring.dead_letter_counts import DeadLetterCounts
from pipeline_assets.monitoring.run_counts import failed_runs
from pipeline_assets.raw.message_rules import KINDS
from pipeline_assets.serving import quarantine
from pipeline_assets.serving.snapshot import read_manifest

_logger = logging.getLogger(__name__)


class PipelineCollector(Collector):
    """Kafka lag and throughput, dead letters, quarantine, snapshot age and failed builds.

    `kafka_config` is the project's client config (KafkaResource().client_config()); `instance`
    the Dagster instance whose run records count failed builds (None: no build metrics).
    """

    def __init__(self, kafka_config: dict[str, object], instance: dg.DagsterInstance | None, log: Any = _logger):
        self.topic, self.group = settings.topic(), settings.consumer_group()
        self.kafka = kafka_state.reader(kafka_config, self.group)
        self.instance, self.log = instance, log
        self.dead_letters = DeadLetterCounts(settings.dead_letter_dir())
        self._down: set[str] = set()  # sources whose failure was logged, until they answer again

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration: that would ask Kafka before anyone scrapes

    def collect(self) -> Iterator[Metric]:
        sources = {"kafka": self._kafka, "dead_letters": self._dead_letters, "snapshot": self._snapshot}
        if self.instance is not None:
            sources["run_records"] = self._builds
        up = GaugeMetricFamily("redset_source_up", "1 when this scrape could read the source", labels=["source"])
        for name, read in sources.items():
            metrics = self._read(name, read)
            up.add_metric([name], 0 if metrics is None else 1)
            yield from metrics or []
        yield up

    def _read(self, name: str, read: Callable[[], Iterator[Metric]]) -> list[Metric] | None:
        """The source's metrics, or None when it cannot be read (one log line per episode)."""
        try:
            metrics = list(read())
        except Exception as exc:  # one source down must not fail the whole scrape
            if name not in self._down:
                self.log.warning(f"metrics: {name} unavailable, left out until it answers ({type(exc).__name__}: {exc})")
                self._down.add(name)
            return None
        if name in self._down:
            self.log.warning(f"metrics: {name} answers again")
            self._down.discard(name)
        return metrics

    def _kafka(self) -> Iterator[Metric]:
        partitions = kafka_state.group_offsets(self.kafka, self.topic)
        lag = GaugeMetricFamily(
            "redset_consumer_lag_messages", "High watermark minus the group's committed offset", labels=["topic", "partition"]
        )
        consumed = CounterMetricFamily(
            "redset_messages_consumed",
            "Messages the pipeline took from Kafka: the committed offset (a partition's first offset is 0)",
            labels=["topic", "partition"],
        )
        for p in partitions:
            lag.add_metric([self.topic, str(p.partition)], p.lag)
            consumed.add_metric([self.topic, str(p.partition)], p.committed or 0)
        yield from (lag, consumed)

    def _dead_letters(self) -> Iterator[Metric]:
        counts = self.dead_letters.counts()
        for kind in KINDS:  # every kind at 0 from the start, for the pipeline's topic
            counts.setdefault((self.topic, kind), 0)
        family = CounterMetricFamily("redset_dead_letters", "Dead letters by kind", labels=["topic", "kind"])
        for (topic, kind), n in sorted(counts.items()):
            family.add_metric([topic, kind], n)
        yield family

    def _snapshot(self) -> Iterator[Metric]:
        manifest = read_manifest(settings.zone_url("serving")) or {}
        rows = dict.fromkeys(quarantine.reasons(), 0) | manifest.get("quarantine_by_reason", {})
        family = CounterMetricFamily("redset_quarantined_rows", "Rows in quarantine, by reason", labels=["reason"])
        for reason, n in rows.items():
            family.add_metric([reason], n)
        yield family
        if "published_at" in manifest:
            published = datetime.fromisoformat(manifest["published_at"])
            age = (datetime.now(timezone.utc) - published).total_seconds()
            yield GaugeMetricFamily("redset_snapshot_age_seconds", "Now minus the snapshot's publish time", value=age)

    def _builds(self) -> Iterator[Metric]:
        family = CounterMetricFamily("redset_build_failures", "Failed Dagster runs of the pipeline's jobs", labels=["job"])
        for job, n in failed_runs(self.instance).items():
            family.add_metric([job], n)
        yield family

