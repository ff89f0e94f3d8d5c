"""One `redset demo` run: its steps in order, and the stop that undoes them (see the package's
docstring)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_assets import settings
from pipeline_assets.demo.addresses import DAGSTER_PORT, DASHBOARD_PORT, DOCS_PORT, HOST, LINEAGE_PATH
from pipeline_assets.demo.dagster_home import demo_live, live_switch_args, prepare_dagster_home
from pipeline_assets.demo.processes import DemoError, Service, log_dir, port_free, spawn, tool, wait_for
from pipeline_assets.demo.progress import watch
from pipeline_assets.demo.replay import replay_file
from pipeline_assets.monitoring import exporter

# Replay the first day of data without pacing, so every screen has numbers at once.
FULL_SPEED_HOURS = 24.0
DAGSTER_START_TIMEOUT_S = 240.0

DASHBOARD_APP = Path(__file__).parent.parent / "serving" / "dashboard" / "app.py"


def synthetic_path() -> Path:
    return settings.data_dir() / "synthetic.parquet"


@dataclass
class Demo:
    source: str | None
    rows: int
    speed: float | None
    services: list[Service] = field(default_factory=list)
    started_broker: bool = False
    metrics_url: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    # --- steps -------------------------------------------------------------------------

    def check_ports(self) -> None:
        taken = [p for p in (DAGSTER_PORT, DASHBOARD_PORT, DOCS_PORT) if not port_free(p)]
        if taken:
            raise DemoError(
                f"port(s) {', '.join(map(str, taken))} on {HOST} are taken: is another `make demo` running? "
                "Stop it with Ctrl-C first."
            )

    def start_broker(self) -> None:
        from pipeline_assets.kafka import broker

        was_running = broker.status() is not None
        try:
            running = broker.start()
        except broker.BrokerError as exc:  # a taken port or a broker that will not start: one line, no traceback
            raise DemoError(str(exc)) from exc
        self.started_broker = not was_running
        self.env.setdefault("KAFKA_BOOTSTRAP_SERVERS", running.bootstrap)

    def ensure_source(self) -> str:
        if self.source:
            return self.source
        path = synthetic_path()
        if path.exists():
            print(f"Reusing generated rows in {path}")
            return str(path)
        from pipeline_assets.source import generator

        print(f"Generating {self.rows:,} synthetic rows into {path} ...", flush=True)
        table = generator.generate(rows=self.rows)
        generator.write(table, path)
        print(generator.summary(table, path))
        return str(path)

    def spawn(self, name: str, cmd: list[str], cwd: Path | None = None, url: str | None = None) -> Service:
        service = spawn(name, cmd, self.env, cwd, url)
        self.services.append(service)
        return service

    def start_docs(self) -> None:
        from pipeline_assets.warehouse.dbt_assets import dbt_env

        dbt = tool("dbt")
        project = settings.DBT_PROJECT_DIR
        print("Generating the dbt docs ...", flush=True)
        settings.warehouse_path().parent.mkdir(parents=True, exist_ok=True)  # dbt-duckdb opens the file
        args = ["--project-dir", str(project), "--profiles-dir", str(project)]
        result = subprocess.run(
            # In the runs' dbt environment: this parse is the one their first dbt invocation reuses.
            [dbt, "docs", "generate", *args, "--quiet"], cwd=project, env={**self.env, **dbt_env(None)},
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise DemoError(f"dbt docs generate failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        cmd = [dbt, "docs", "serve", *args, "--host", HOST, "--port", str(DOCS_PORT), "--no-browser"]
        self.spawn("dbt-docs", cmd, cwd=project, url=f"http://{HOST}:{DOCS_PORT}")

    def start_dagster(self) -> None:
        cmd = [tool("dagster"), "dev", "-w", "workspace.yaml", "-h", HOST, "-p", str(DAGSTER_PORT)]
        service = self.spawn("dagster", cmd, url=f"http://{HOST}:{DAGSTER_PORT}")
        print("Starting Dagster (the first start takes a minute) ...", flush=True)
        wait_for(service, f"{service.url}/server_info", DAGSTER_START_TIMEOUT_S)
        # Live mode's switch (the only sensor whose default is STOPPED), in this demo's own instance.
        subprocess.run(
            [tool("dagster"), *live_switch_args(), "-w", "workspace.yaml"],
            cwd=settings.PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            check=False,
        )

    def start_metrics(self) -> None:
        """The batch path's metrics (`redset metrics`); live mode serves its own. A taken port is
        one line: metrics never stop the demo."""
        if not exporter.metrics_enabled():
            return
        self.metrics_url = f"http://{HOST}:{exporter.metrics_port()}/metrics"
        if demo_live():
            return
        if not port_free(exporter.metrics_port()):
            print(f"demo: port {exporter.metrics_port()} is taken, so no metrics (REDSET_METRICS_PORT picks another)")
            self.metrics_url = None
            return
        self.spawn("metrics", [sys.executable, "-m", "pipeline_assets.cli", "metrics"], url=self.metrics_url)

    def start_producer(self, source: str | None) -> None:
        if source is None:
            return
        cmd = [sys.executable, "-m", "pipeline_assets.cli", "produce", "--source", source]
        cmd += ["--speed", "max" if self.speed is None else str(self.speed)]
        cmd += ["--full-speed-hours", str(FULL_SPEED_HOURS)]
        self.spawn("producer", cmd)

    def start_forecasts(self) -> None:
        """The forecasts outside the live cycle: a nice-19 worker, forecasting once two weeks are in."""
        if settings.engine() == "spark":
            return  # the hourly asset serves on Spark
        self.spawn("forecasts", [sys.executable, "-m", "pipeline_assets.insights.worker", "--interval", "60"])

    def start_dashboards(self) -> None:
        cmd = [
            tool("streamlit"), "run", str(DASHBOARD_APP),
            "--server.address", HOST, "--server.port", str(DASHBOARD_PORT),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        ]  # fmt: skip
        service = self.spawn("dashboards", cmd, url=f"http://{HOST}:{DASHBOARD_PORT}")
        wait_for(service, f"{service.url}/_stcore/health", 60)

    # --- running and stopping --------------------------------------------------------------

    def print_urls(self) -> None:
        print("\nThe demo is up (everything on 127.0.0.1):")
        print(f"  Dagster      http://{HOST}:{DAGSTER_PORT}")
        print(f"  Lineage      http://{HOST}:{DAGSTER_PORT}/{LINEAGE_PATH}")
        print(f"  Dashboards   http://{HOST}:{DASHBOARD_PORT}   (expert view: /expert)")
        print(f"  dbt docs     http://{HOST}:{DOCS_PORT}")
        if self.metrics_url:
            print(f"  Metrics      {self.metrics_url}   ({'live mode' if demo_live() else 'redset metrics'}; Prometheus format)")
        print(f"  Kafka        {self.env.get('KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')}")
        print(f"  Logs         {log_dir()}")
        print("Numbers appear on the dashboards within about two minutes and grow as the replay goes on.")
        print("Press Ctrl-C to stop everything this command started.\n", flush=True)

    def stop(self) -> None:
        print("\nStopping what the demo started ...", flush=True)
        for service in reversed(self.services):
            service.stop()
        if self.started_broker:
            from pipeline_assets.kafka import broker

            broker.stop()
        print("Demo stopped.", flush=True)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(source: str | None = None, rows: int = 1_000_000, speed: float | None = 6480.0) -> int:
    demo = Demo(source=source, rows=rows, speed=speed)
    # Both, explicitly: a shell that starts us in the background may have set SIGINT to "ignore".
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return_code = 0
    try:
        demo.check_ports()
        demo.start_broker()
        replay_source = demo.ensure_source()
        prepare_dagster_home(demo.env)
        demo.start_docs()
        demo.start_dagster()
        demo.start_metrics()
        demo.start_producer(replay_file(replay_source, demo.env.get("KAFKA_BOOTSTRAP_SERVERS")))
        demo.start_forecasts()
        demo.start_dashboards()
        demo.print_urls()
        watch(demo.services)
    except KeyboardInterrupt:
        pass
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return_code = 1
    finally:
        demo.stop()
    return return_code
