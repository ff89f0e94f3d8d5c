"""Live mode's own metrics: each cycle's stages, and how long a message takes to reach the snapshot.

`redset_kafka_to_snapshot_seconds` is observed per message (a cycle takes up to 250,000), so its
buckets are counted with numpy over the Kafka timestamps of the raw files a cycle wrote, and
served by a collector of its own: prometheus_client's Histogram would cost a locked call each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from pipeline_assets.live.cycle import CycleResult
from pipeline_assets.monitoring import exporter
from pipeline_assets.monitoring.metrics import PipelineCollector

# cycle.py's stages (CycleResult.seconds) and loop.py's `report`: exported at 0 from the start.
STAGES = ("consume", "dbt_daily", "dbt_all_time", "publish", "report")
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
LATENCY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class BulkHistogram(Collector):
    """A histogram without labels that takes a whole array of observations at once."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name, self.documentation = name, documentation
        self.edges = np.asarray(buckets, dtype=float)
        self.counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last one: above every edge
        self.sum = 0.0

    def observe_many(self, values: np.ndarray) -> None:
        # side="left": a value equal to an edge falls into that edge's bucket (le is inclusive).
        self.counts += np.bincount(np.searchsorted(self.edges, values, side="left"), minlength=len(self.counts))
        self.sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        cumulative = np.cumsum(self.counts)
        buckets = [(floatToGoString(edge), int(n)) for edge, n in zip(self.edges, cumulative, strict=False)]
        buckets.append(("+Inf", int(cumulative[-1])))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self.sum)


class LiveMetrics:
    """`observe(cycle)` after each cycle of the live loop."""

    def __init__(self, registry: CollectorRegistry, log: Any) -> None:
        self.log = log
        self.stages = Histogram(
            "redset_live_cycle_seconds", "Seconds of each live cycle's stages", ["stage"], buckets=STAGE_BUCKETS,
            registry=registry,
        )  # fmt: skip
        for stage in STAGES:
            self.stages.labels(stage)
        self.latency = BulkHistogram(
            "redset_kafka_to_snapshot_seconds",
            "Seconds from a message's Kafka timestamp to the publication of the snapshot that shows it",
            LATENCY_BUCKETS,
        )
        registry.register(self.latency)
        self._unpublished: list[Path] = []  # raw files written since the last publication

    def observe(self, cycle: CycleResult) -> None:
        try:
            self._observe(cycle)
        except Exception as exc:  # a metric must never end live mode
            self.log.warning(f"metrics: cycle {cycle.number} not observed ({type(exc).__name__}: {exc})")

    def _observe(self, cycle: CycleResult) -> None:
        for stage, seconds in cycle.seconds.items():
            self.stages.labels(stage).observe(seconds)
        self._unpublished += cycle.stats.summary.paths
        if cycle.publication is not None:
            published = datetime.fromisoformat(cycle.publication.published_at).timestamp()
            self.latency.observe_many(published - self._kafka_timestamps(self._unpublished))
            self._unpublished = []

    @staticmethod
    def _kafka_timestamps(paths: list[Path]) -> np.ndarray:
        """Kafka timestamps (epoch seconds) of the rows in `paths`; a file gone since is skipped."""
        parts = []
        for path in paths:
            try:
                column = pc.drop_null(pq.read_table(path, columns=["kafka_timestamp"]).column("kafka_timestamp"))
            except FileNotFoundError:
                continue
            micros = pc.cast(pc.cast(column, pa.timestamp("us", "UTC")), pa.int64()).to_numpy(zero_copy_only=False)
            parts.append(micros / 1e6)
        return np.concatenate(parts) if parts else np.zeros(0)


class NoMetrics:
    """REDSET_METRICS=off: cycles are not observed, and nothing is served."""

    def observe(self, cycle: CycleResult) -> None:
        pass


@contextmanager
def serving_live_metrics(
    instance: dg.DagsterInstance, kafka_config: dict[str, object], log: Any
) -> Iterator[LiveMetrics | NoMetrics]:
    """Live mode's endpoint while the block runs: the collector plus its own histograms."""
    if not exporter.metrics_enabled():
        log.info("metrics: off (REDSET_METRICS=off)")
        yield NoMetrics()
        return
    registry = CollectorRegistry()
    registry.register(PipelineCollector(kafka_config, instance, log))
    metrics = LiveMetrics(registry, log)
    with exporter.serving(registry, log=log):
        yield metrics
