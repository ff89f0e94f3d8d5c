"""`redset metrics`: the batch path's Prometheus endpoint, until Ctrl-C or SIGTERM.

The batch path's dump and build runs are short-lived processes, so this one serves the
collector (monitoring/metrics.py), which reads everything from stored state on each scrape.
Live mode serves the same collector itself: one of the two runs, and a second server finds the
port taken and says so.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    metrics = sub.add_parser(
        "metrics", parents=[common], help="serve the pipeline's Prometheus metrics (the batch path) until Ctrl-C"
    )
    metrics.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 9108 or REDSET_METRICS_PORT)")
    metrics.set_defaults(func=cmd_metrics)


def cmd_metrics(args: argparse.Namespace) -> int:
    import dagster as dg
    from prometheus_client import CollectorRegistry

    from pipeline_assets.live.stopping import stop_on_signals
    from pipeline_assets.monitoring import exporter
    from pipeline_assets.monitoring.metrics import PipelineCollector
    from pipeline_assets.kafka.resource import KafkaResource

    log = logging.getLogger("pipeline_assets.monitoring")
    log.setLevel(logging.INFO)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    if instance is None:
        print("redset metrics: DAGSTER_HOME is not set, so no redset_build_failures_total", file=sys.stderr)
    registry = CollectorRegistry()
    registry.register(PipelineCollector(KafkaResource().client_config(), instance, log))
    stop = threading.Event()
    with exporter.serving(registry, args.port, log) as url, stop_on_signals(stop, lambda _: None):
        if url is None:
            return 1  # serving is this command's one job (the line above said why)
        print(f"redset metrics: serving {url} (Ctrl-C stops)", flush=True)
        stop.wait()
    print("redset metrics: stopped", file=sys.stderr)
    return 0
