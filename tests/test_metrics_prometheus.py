"""A real Prometheus scrapes live mode during a short replay with bad messages; its HTTP API's
figures equal the pipeline's own (the dead-letter zone, the group's offsets, the warehouse's
quarantine), every Grafana panel's query returns data, and the alert rules load and evaluate."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from prometheus_support import ROOT, start_prometheus
from raw_support import dead_rows, group_offsets, high_watermarks, raw_rows, use_private_dirs
from test_live_mode import wait_until
from test_raw_bad_messages import MAX_MESSAGE_BYTES, produce_with_bad_messages

from pipeline_assets import settings
from pipeline_assets.runtime.ports import free_ports
from pipeline_assets.live.loop import LiveLoop
from pipeline_assets.live.report import report_runless
from pipeline_assets.monitoring.run_counts import JOBS
from pipeline_assets.raw.message_rules import KINDS
from pipeline_assets.serving.snapshot import read_manifest
from pipeline_assets.source import generator

ROWS = 2_000
DASHBOARD = ROOT / "docker" / "grafana" / "redset.json"
ALERTS = {"RedsetConsumerLagGrowing", "RedsetSnapshotStale", "RedsetDeadLetterBurst", "RedsetBuildsFailing",
          "RedsetMetricsSourceDown"}  # fmt: skip


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, with Grafana's $__rate_interval as a literal window."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"].replace("$__rate_interval", "1m")) for p in panels for t in p["targets"]]


@pytest.mark.kafka
@pytest.mark.slow
def test_prometheus_scrapes_live_mode_during_a_replay_with_bad_messages(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    monkeypatch.setenv("REDSET_LIVE_POLL_SECONDS", "0.2")
    monkeypatch.setenv("REDSET_LIVE_INSIGHTS_SECONDS", "3600")
    monkeypatch.setenv("REDSET_LIVE_TEST_SECONDS", "3600")
    monkeypatch.setenv("REDSET_MAX_MESSAGE_BYTES", str(MAX_MESSAGE_BYTES))
    [port] = free_ports(1)
    monkeypatch.setenv("REDSET_METRICS_PORT", str(port))
    table = generator.generate(ROWS, seed=11, start=date(2024, 3, 1), days=2)
    produced = produce_with_bad_messages(kafka_broker, kafka_topic, table)

    with start_prometheus(f"127.0.0.1:{port}", tmp_path / "prometheus") as prometheus:
        instance = dg.DagsterInstance.ephemeral()
        stop = threading.Event()
        loop = LiveLoop(instance, stop, where="test")
        thread = threading.Thread(target=lambda: [report_runless(instance, events) for events in loop.cycles()])
        thread.start()
        try:
            wait_until(lambda: read_manifest(settings.serving_dir()) is not None, "a published snapshot", thread)
            published = 'sum(redset_live_cycle_seconds_count{stage="publish"})'
            wait_until(lambda: prometheus.values(published, "").get("", 0) >= 1, "a scrape after it", thread)

            # Through Prometheus: the zone's dead letters by kind, every kind there.
            zone = Counter(r.split(":", 1)[0] for r in dead_rows(["reason"]).column("reason").to_pylist())
            assert zone == produced
            dead = prometheus.values("sum by (kind) (redset_dead_letters_total)", "kind")
            assert dead == dict.fromkeys(KINDS, 0) | zone
            # The group's committed offsets, all of the topic: no lag.
            committed = {str(o.partition): o.committed for o in group_offsets(kafka_broker, kafka_topic, group)}
            assert prometheus.values("redset_messages_consumed_total", "partition") == committed
            assert committed == {str(p): h for p, h in high_watermarks(kafka_broker, kafka_topic).items()}
            assert set(prometheus.values("redset_consumer_lag_messages", "partition").values()) == {0}
            # Every published row's Kafka-to-snapshot latency, once.
            latency = prometheus.values("redset_kafka_to_snapshot_seconds_count", "")[""]
            assert latency == raw_rows(["kafka_offset"]).num_rows == ROWS
            assert 0 <= prometheus.values("redset_snapshot_age_seconds", "")[""] < 120
            assert prometheus.values("redset_build_failures_total", "job") == dict.fromkeys(JOBS, 0)
            quarantined = prometheus.values("redset_quarantined_rows_total", "reason")

            # Every Grafana panel has data; every alert rule loaded and evaluates.
            # A rate() needs two scrapes of a series, so the first scrape after the publish may not do.
            empty = lambda: [title for title, expr in panel_queries() if not prometheus.query(expr)]  # noqa: E731
            wait_until(lambda: not empty(), "data in every Grafana panel", thread)
            assert not empty(), f"panels without data: {empty()}"
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            assert {r["name"] for r in rules} == ALERTS
            assert {r["health"] for r in rules} == {"ok"}, rules
        finally:
            stop.set()
            thread.join(120)
    assert loop.summary.failed_cycles == 0

    # The quarantine as the warehouse holds it (the snapshot published it; live mode has stopped).
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as con:
        rows = dict(con.execute("SELECT reason, count(*) FROM main.quarantine_queries GROUP BY reason").fetchall())
    assert quarantined == dict.fromkeys(quarantined, 0) | rows
    assert set(quarantined) == set(read_manifest(settings.serving_dir())["quarantine_by_reason"])
