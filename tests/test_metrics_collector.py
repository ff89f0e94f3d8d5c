"""The collector's figures against the pipeline's own: Kafka's offsets, the dead-letter zone's
counts, the snapshot's manifest and Dagster's run records; and what it does when they are away."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from metrics_support import by_label, scrape, scrape_url
from prometheus_client import CollectorRegistry
from raw_support import dead_rows, group_offsets, high_watermarks, use_private_dirs
from test_raw_bad_messages import MAX_MESSAGE_BYTES, produce_with_bad_messages

from pipeline_assets import settings
from pipeline_assets.runtime.ports import free_ports, port_in_use
from pipeline_assets.monitoring import exporter
from pipeline_assets.monitoring.metrics import PipelineCollector
from pipeline_assets.monitoring.run_counts import JOBS
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.raw.message_rules import KINDS
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.serving import quarantine
from pipeline_assets.durable import write_json_atomically
from pipeline_assets.serving.snapshot import MANIFEST
from pipeline_assets.source import generator

ROWS = 3_000


def collector_registry(instance: dg.DagsterInstance | None = None, **kafka: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(KafkaResource().client_config(**kafka), instance))
    return registry


@pytest.mark.kafka
def test_collector_matches_kafka_and_the_dead_letter_zone(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path, kafka_topic)
    monkeypatch.setenv("REDSET_MAX_MESSAGE_BYTES", str(MAX_MESSAGE_BYTES))
    produced = produce_with_bad_messages(kafka_broker, kafka_topic, generator.generate(ROWS, seed=5))
    highs = high_watermarks(kafka_broker, kafka_topic)
    registry = collector_registry()

    # Before the pipeline consumed anything: all of it is lag, and every kind is there at 0.
    before = scrape(registry)
    assert by_label(before, "redset_consumer_lag_messages", "partition") == {str(p): h for p, h in highs.items()}
    assert set(by_label(before, "redset_messages_consumed_total", "partition").values()) == {0}
    assert by_label(before, "redset_dead_letters_total", "kind") == dict.fromkeys(KINDS, 0)
    assert by_label(before, "redset_source_up", "source") == {"kafka": 1, "dead_letters": 1, "snapshot": 1}
    # Read-only: the scrape committed nothing for the pipeline's group.
    assert {o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == {None}

    result = dg.materialize([raw_queries], resources={"kafka": KafkaResource()}, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    after = scrape(registry)
    committed = {str(o.partition): o.committed for o in group_offsets(kafka_broker, kafka_topic, group)}
    assert by_label(after, "redset_messages_consumed_total", "partition") == committed
    assert committed == {str(p): h for p, h in highs.items()}
    assert set(by_label(after, "redset_consumer_lag_messages", "partition").values()) == {0}
    # Dead letters: the zone's own count by kind, which is what was spoiled.
    zone = Counter(r.split(":", 1)[0] for r in dead_rows(["reason"]).column("reason").to_pylist())
    assert zone == produced
    assert by_label(after, "redset_dead_letters_total", "kind") == dict.fromkeys(KINDS, 0) | zone
    assert {dict(labels)["topic"] for (name, labels) in after if name == "redset_dead_letters_total"} == {kafka_topic}
    # A second scrape reads no new file and counts the same.
    assert scrape(registry) == after


def test_snapshot_and_run_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    [port] = free_ports(1)  # no broker there: Kafka's metrics are left out, the rest is served
    instance = dg.DagsterInstance.ephemeral()
    registry = collector_registry(instance, **{"bootstrap.servers": f"127.0.0.1:{port}"})

    empty = scrape(registry)
    assert by_label(empty, "redset_quarantined_rows_total", "reason") == dict.fromkeys(quarantine.reasons(), 0)
    assert by_label(empty, "redset_build_failures_total", "job") == dict.fromkeys(JOBS, 0)
    assert not any(name == "redset_snapshot_age_seconds" for name, _ in empty)

    published = time.time() - 90
    manifest = {
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(published)),
        "quarantine_by_reason": {"null_key": 4, "implausible_value: mbytes_scanned": 2},
    }
    settings.serving_dir().mkdir(parents=True)
    write_json_atomically(manifest, settings.serving_dir() / MANIFEST)

    @dg.op
    def fails() -> None:
        raise RuntimeError("a failed build")

    @dg.job(name="build_marts_job")
    def failing_job() -> None:
        fails()

    for _ in range(2):
        assert not failing_job.execute_in_process(instance=instance, raise_on_error=False).success
    samples = scrape(registry)
    assert by_label(samples, "redset_quarantined_rows_total", "reason") == (
        dict.fromkeys(quarantine.reasons(), 0) | manifest["quarantine_by_reason"]
    )
    assert 89 <= samples[("redset_snapshot_age_seconds", frozenset())] < 120
    assert by_label(samples, "redset_build_failures_total", "job") == dict.fromkeys(JOBS, 0) | {"build_marts_job": 2}
    assert by_label(samples, "redset_source_up", "source")["kafka"] == 0


def test_a_broker_that_is_down_is_one_line_and_a_bounded_scrape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REDSET_DATA_DIR", str(tmp_path))
    [port] = free_ports(1)
    registry = collector_registry(**{"bootstrap.servers": f"127.0.0.1:{port}"})
    with caplog.at_level(logging.WARNING, logger="pipeline_assets.monitoring.metrics"):
        started = time.monotonic()
        for _ in range(3):
            samples = scrape(registry)
        seconds = (time.monotonic() - started) / 3
    assert by_label(samples, "redset_source_up", "source") == {"kafka": 0, "dead_letters": 1, "snapshot": 1}
    assert "redset_dead_letters_total" in {name for name, _ in samples}
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("pipeline_assets")]  # not librdkafka's
    assert len(lines) == 1 and lines[0].startswith("metrics: kafka unavailable"), lines
    assert seconds < 5, f"a scrape with the broker down took {seconds:.1f}s"


def test_a_metrics_port_in_use_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.metrics")
    [port] = free_ports(1)
    with caplog.at_level(logging.INFO, logger="test.metrics"):
        with exporter.serving(CollectorRegistry(), port, log) as url:
            assert url == f"http://127.0.0.1:{port}/metrics"
            with exporter.serving(CollectorRegistry(), port, log) as second:
                assert second is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"cannot serve on 127.0.0.1:{port}" in warnings[0], warnings


def test_known_label_values_are_the_pipelines() -> None:
    from pipeline_assets.orchestration.definitions import defs

    assert set(JOBS) == {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"}
    rules = (settings.DBT_PROJECT_DIR / "macros" / "rules.sql").read_text()
    listed = re.search(r"set reasons = \[([^\]]*)\]", rules).group(1)
    assert tuple(re.findall(r"'([^']+)'", listed)) == quarantine.FIXED_REASONS


def test_metrics_off_serves_nothing_and_observes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """REDSET_METRICS=off (what bench/metrics.py compares live mode against): the port stays free."""
    from pipeline_assets.live.metrics import NoMetrics, serving_live_metrics

    log = logging.getLogger("test.metrics")
    [port] = free_ports(1)
    monkeypatch.setenv("REDSET_METRICS_PORT", str(port))
    monkeypatch.setenv("REDSET_METRICS", "off")
    with serving_live_metrics(None, KafkaResource().client_config(), log) as metrics:
        assert isinstance(metrics, NoMetrics)
        assert not port_in_use(port)
    monkeypatch.setenv("REDSET_METRICS", "on")
    with serving_live_metrics(None, KafkaResource().client_config(), log) as metrics:
        assert port_in_use(port)
        assert "redset_live_cycle_seconds_count" in {name for name, _ in scrape_url(f"http://127.0.0.1:{port}/metrics")}
    monkeypatch.setenv("REDSET_METRICS", "maybe")
    with pytest.raises(ValueError, match="REDSET_METRICS='maybe': use on or off"):
        exporter.metrics_enabled()

