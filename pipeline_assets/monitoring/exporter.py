"""The /metrics HTTP endpoint (127.0.0.1 unless REDSET_METRICS_HOST says otherwise), for live mode or `redset metrics`.

Metrics are never a reason for the pipeline to stop: a port that is taken gives one warning
line and the caller runs on without an endpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server


_logger = logging.getLogger(__name__)


def metrics_enabled() -> bool:
    """REDSET_METRICS=off: no exporter and no live histograms (to measure what metrics cost)."""
    value = (os.environ.get("REDSET_METRICS", "").strip() or "on").lower()
    if value not in ("on", "off"):
        raise ValueError(f"REDSET_METRICS={value!r}: use on or off")
    return value == "on"


def metrics_port() -> int:
    """The Prometheus exporter's port, served by live mode or `redset metrics`."""
    return int(os.environ.get("REDSET_METRICS_PORT", "").strip() or "9108")


def metrics_host() -> str:
    """Where the exporter listens: loopback, but 0.0.0.0 in a container Prometheus scrapes (compose)."""
    return os.environ.get("REDSET_METRICS_HOST", "").strip() or "127.0.0.1"


def url(host: str, port: int) -> str:
    return f"http://{host}:{port}/metrics"


@contextmanager
def serving(registry: CollectorRegistry, port: int | None = None, log: Any = _logger) -> Iterator[str | None]:
    """Serve `registry` on `port` (metrics_port()) while the block runs; yields the URL,
    or None when the port cannot be had (logged once)."""
    host, port = metrics_host(), metrics_port() if port is None else port
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning(f"metrics: cannot serve on {host}:{port} ({exc.strerror or exc}); running on without metrics "
                    "(REDSET_METRICS_PORT picks another port)")  # fmt: skip
        yield None
        return
    log.info(f"metrics on {url(host, port)}")
    try:
        yield url(host, port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
