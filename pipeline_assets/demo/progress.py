"""The demo's progress: a status line every 20 s (replay state, what the dashboards show), and the
watch that stops the demo when a service dies."""

from __future__ import annotations

import time

from pipeline_assets import settings
from pipeline_assets.demo.processes import DemoError, Service
from pipeline_assets.serving.dashboard.data import Filters, ServingData

STATUS_EVERY_S = 20.0


def status_line(services: list[Service], started: float) -> str:
    data = ServingData(settings.zone_url("serving"))
    shown = "no snapshot yet"
    if not data.is_empty():
        k = data.kpis(Filters())
        published = (data.manifest() or {}).get("published_at", "?")
        shown = f"dashboards show {k['queries']:,.0f} queries (snapshot {published})"
    producer = next((s for s in services if s.name == "producer"), None)
    if producer is None or producer.alive():
        replay = "replaying" if producer else "nothing to replay"
    elif producer.proc.returncode == 0:
        replay = "replay finished"
    else:
        replay = f"replay FAILED (status {producer.proc.returncode}; see {producer.log})"
    return f"[demo {time.monotonic() - started:6.0f}s] {replay}; {shown}"


def watch(services: list[Service]) -> None:
    started = last = time.monotonic()
    while True:
        time.sleep(1)
        for s in services:
            if s.name != "producer" and not s.alive():
                raise DemoError(f"{s.name} exited with status {s.proc.returncode}; see {s.log}")
        if time.monotonic() - last >= STATUS_EVERY_S:
            last = time.monotonic()
            try:
                print(status_line(services, started), flush=True)
            except Exception as exc:  # a status line must never stop the demo
                print(f"[demo] status unavailable: {exc}", flush=True)
