"""`redset demo` (`make demo`): the whole pipeline on 127.0.0.1, stopped with Ctrl-C.

In order, reusing whatever already exists:

1. the local Kafka broker (left running on exit if it was running before);
2. 1M generated rows in data/synthetic.parquet, unless a source is given or the file exists;
3. the dbt docs site (generated once per run, served on :8080);
4. Dagster (`dagster dev`, :3000) with DAGSTER_HOME=.dagster_home and every sensor on, so the
   replay flows Kafka -> raw_queries -> dbt marts -> serving_snapshot by itself;
5. the replay producer: the first hours of data at full speed (screens fill in about two
   minutes), then time-scaled;
6. the dashboards (Streamlit, :8501).

Ctrl-C (or SIGTERM) stops exactly the processes this command started, newest first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipeline_assets import settings
from pipeline_assets.serving.dashboard.data import Filters, ServingData

HOST = "127.0.0.1"
# REDSET_DEMO_*_PORT move a demo beside another one (`make screenshots` runs its own).
DAGSTER_PORT = int(os.environ.get("REDSET_DEMO_DAGSTER_PORT") or 3000)
DASHBOARD_PORT = int(os.environ.get("REDSET_DEMO_DASHBOARD_PORT") or 8501)
DOCS_PORT = int(os.environ.get("REDSET_DEMO_DOCS_PORT") or 8080)
# Replay the first day of data without pacing, so every screen has numbers at once.
FULL_SPEED_HOURS = 24.0
# Sensors tick every 3 s instead of the default 30 s: a batch waits for two sensor ticks (the
# raw dump's, then build_marts_job's) on its way to the dashboards.
DEMO_SENSOR_INTERVAL = "3"
STATUS_EVERY_S = 20.0
STOP_TIMEOUT_S = 20.0
DAGSTER_START_TIMEOUT_S = 240.0

DASHBOARD_APP = Path(__file__).parent / "serving" / "dashboard" / "app.py"
# The asset graph from the raw Kafka dump to the dashboards' snapshot, every group expanded.
LINEAGE_PATH = "assets/serving_snapshot?view=lineage&lineageScope=upstream&lineageDepth=6"
# The project's Dagster instance settings (the `duckdb` pool limited to 1).
DAGSTER_YAML_TEMPLATE = settings.PROJECT_ROOT / "scripts" / "dagster.yaml"


def dagster_home() -> Path:
    return Path(os.environ.get("REDSET_DEMO_DAGSTER_HOME") or settings.PROJECT_ROOT / ".dagster_home")


def log_dir() -> Path:
    return settings.data_dir() / "demo-logs"


def synthetic_path() -> Path:
    return settings.data_dir() / "synthetic.parquet"


class DemoError(RuntimeError):
    pass


@dataclass(frozen=True)
class TopicState:
    """How far an earlier replay got: messages on the topic, and the arrival time from which a
    new replay loses nothing (None: from the start)."""

    messages: int
    resume_from: datetime | None


def topic_state(bootstrap: str | None = None) -> TopicState:
    """Read the last message of every partition of the topic.

    The producer keeps each partition in send order (arrival order), but a stopped replay leaves
    partitions at different points. Rows that arrived before the earliest of the partitions'
    last messages are on the topic for sure; replaying from there duplicates a few rows (dbt's
    clean step keeps one per query) and loses none.
    """
    from confluent_kafka import Consumer, TopicPartition

    from pipeline_assets.kafka.config import client_config
    from pipeline_assets.raw.offsets import TopicMissing, partition_offsets

    overrides = {"group.id": "redset-demo-probe", "enable.auto.commit": False}
    if bootstrap:
        overrides["bootstrap.servers"] = bootstrap
    consumer = Consumer(client_config(**overrides))
    try:
        try:
            offsets = partition_offsets(consumer, settings.topic())
        except TopicMissing:
            return TopicState(0, None)
        messages = sum(o.high for o in offsets)
        if messages == 0 or any(o.high <= o.low for o in offsets):
            return TopicState(messages, None)  # a partition holds nothing: start over
        consumer.assign([TopicPartition(settings.topic(), o.partition, o.high - 1) for o in offsets])
        last: dict[int, datetime] = {}
        deadline = time.monotonic() + 30
        while len(last) < len(offsets) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None and msg.partition() not in last:
                last[msg.partition()] = datetime.fromisoformat(json.loads(msg.value())["arrival_timestamp"])
        if len(last) < len(offsets):
            return TopicState(messages, None)
        return TopicState(messages, min(last.values()))
    finally:
        consumer.close()


def rows_from(source: str, since: datetime, out: Path) -> tuple[int, int]:
    """Write the rows of `source` that arrived at or after `since` to `out`, in the reader's
    order; return (rows written, rows in the source). Nothing is written when none qualify."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline_assets.source import reader

    total = kept = 0
    tmp = out.with_name(f".{out.name}.tmp")
    writer: pq.ParquetWriter | None = None
    bound = pa.scalar(since, pa.timestamp("us"))
    try:
        for batch in reader.iter_batches(source):
            total += batch.num_rows
            batch = batch.filter(pc.greater_equal(batch.column("arrival_timestamp"), bound))
            if batch.num_rows:
                writer = writer or pq.ParquetWriter(tmp, batch.schema)
                writer.write_batch(batch)
                kept += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if kept:
        os.replace(tmp, out)
    tmp.unlink(missing_ok=True)
    return kept, total


@dataclass
class Service:
    """A process this demo started: its own process group, so stopping it stops its children."""

    name: str
    proc: subprocess.Popen
    log: Path
    url: str | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        print(f"  stopping {self.name} (pid {self.proc.pid}) ...", flush=True)
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        # `dagster dev` leaves its webserver/daemon in the group; make sure none outlives us.
        _signal_group(self.proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _tool(name: str) -> str:
    """A console script of this environment (the venv's bin), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise DemoError(f"`{name}` not found: run `make install` first")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status < 500
    except OSError:
        return False


def _wait_for(service: Service, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(url):
        if not service.alive():
            raise DemoError(f"{service.name} exited with status {service.proc.returncode}; see {service.log}")
        if time.monotonic() > deadline:
            raise DemoError(f"{service.name} did not answer on {url} within {timeout:.0f}s; see {service.log}")
        time.sleep(1)


@dataclass
class Demo:
    source: str | None
    rows: int
    speed: float | None
    services: list[Service] = field(default_factory=list)
    started_broker: bool = False
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    # --- steps -------------------------------------------------------------------------

    def check_ports(self) -> None:
        taken = [p for p in (DAGSTER_PORT, DASHBOARD_PORT, DOCS_PORT) if not _port_free(p)]
        if taken:
            raise DemoError(
                f"port(s) {', '.join(map(str, taken))} on {HOST} are taken: is another `make demo` running? "
                "Stop it with Ctrl-C first."
            )

    def start_broker(self) -> None:
        from pipeline_assets.kafka import broker

        was_running = broker.status() is not None
        running = broker.start()
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

    def prepare_dagster_home(self) -> None:
        home = dagster_home()
        home.mkdir(parents=True, exist_ok=True)
        # The project's instance settings, refreshed each time; the runs and event logs stay.
        shutil.copyfile(DAGSTER_YAML_TEMPLATE, home / "dagster.yaml")
        self.env["DAGSTER_HOME"] = str(home)
        # Dagster's processes find dbt and friends in this environment even when it is not activated.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])
        self.env.setdefault("REDSET_SENSOR_INTERVAL", DEMO_SENSOR_INTERVAL)

    def spawn(self, name: str, cmd: list[str], cwd: Path | None = None, url: str | None = None) -> Service:
        log_dir().mkdir(parents=True, exist_ok=True)
        log = log_dir() / f"{name}.log"
        with open(log, "ab") as out:
            out.write(f"\n--- {datetime.now().isoformat(timespec='seconds')} {' '.join(cmd)}\n".encode())
            out.flush()
            # A new session: the terminal's Ctrl-C reaches only this command, which then stops
            # each service in order.
            proc = subprocess.Popen(
                cmd,
                cwd=cwd or settings.PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, proc, log, url)
        self.services.append(service)
        return service

    def start_docs(self) -> None:
        from pipeline_assets.dbt import dbt_env

        dbt = _tool("dbt")
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
        cmd = [_tool("dagster"), "dev", "-w", "workspace.yaml", "-h", HOST, "-p", str(DAGSTER_PORT)]
        service = self.spawn("dagster", cmd, url=f"http://{HOST}:{DAGSTER_PORT}")
        print("Starting Dagster (the first start takes a minute) ...", flush=True)
        _wait_for(service, f"{service.url}/server_info", DAGSTER_START_TIMEOUT_S)
        # Sensors whose default is STOPPED are switched on in this demo's own instance.
        subprocess.run(
            [_tool("dagster"), "sensor", "start", "--start-all", "-w", "workspace.yaml"],
            cwd=settings.PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            check=False,
        )

    def replay_file(self, source: str) -> str | None:
        """What to replay: `source`, or its rows from where an earlier demo's replay stopped.

        An earlier run of the same source is known from data/demo-state.json; the topic's last
        messages say how far it got (topic_state). None when the whole source is on the topic.
        """
        topic = topic_state(self.env.get("KAFKA_BOOTSTRAP_SERVERS"))
        state = settings.data_dir() / "demo-state.json"
        previous = json.loads(state.read_text()).get("source") if state.exists() else None
        state.write_text(json.dumps({"source": source}))
        # No state file: an older demo, of the same source as far as anyone knows.
        other_source = previous is not None and previous != source
        if topic.messages and other_source:
            print(f"The topic holds {topic.messages:,} messages from another source; replaying all of {source}.")
        if topic.resume_from is None or other_source:
            return source
        rest = settings.data_dir() / "demo-replay.parquet"
        kept, total = rows_from(source, topic.resume_from, rest)
        if kept == 0:
            print(f"The topic already holds all {total:,} rows of {source}: nothing left to replay.")
            return None
        print(
            f"The topic holds {topic.messages:,} messages of {total:,} rows from an earlier run: replaying "
            f"the {kept:,} that arrived from {topic.resume_from:%Y-%m-%d %H:%M} on (dbt keeps one copy of each)."
        )
        return str(rest)

    def start_producer(self, source: str | None) -> None:
        if source is None:
            return
        cmd = [sys.executable, "-m", "pipeline_assets.cli", "produce", "--source", source]
        cmd += ["--speed", "max" if self.speed is None else str(self.speed)]
        cmd += ["--full-speed-hours", str(FULL_SPEED_HOURS)]
        self.spawn("producer", cmd)

    def start_dashboards(self) -> None:
        cmd = [
            _tool("streamlit"), "run", str(DASHBOARD_APP),
            "--server.address", HOST, "--server.port", str(DASHBOARD_PORT),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        ]  # fmt: skip
        service = self.spawn("dashboards", cmd, url=f"http://{HOST}:{DASHBOARD_PORT}")
        _wait_for(service, f"{service.url}/_stcore/health", 60)

    # --- running and stopping --------------------------------------------------------------

    def print_urls(self) -> None:
        print("\nThe demo is up (everything on 127.0.0.1):")
        print(f"  Dagster      http://{HOST}:{DAGSTER_PORT}")
        print(f"  Lineage      http://{HOST}:{DAGSTER_PORT}/{LINEAGE_PATH}")
        print(f"  Dashboards   http://{HOST}:{DASHBOARD_PORT}   (expert view: /expert)")
        print(f"  dbt docs     http://{HOST}:{DOCS_PORT}")
        print(f"  Kafka        {self.env.get('KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')}")
        print(f"  Logs         {log_dir()}")
        print("Numbers appear on the dashboards within about two minutes and grow as the replay goes on.")
        print("Press Ctrl-C to stop everything this command started.\n", flush=True)

    def status_line(self, started: float) -> str:
        data = ServingData(settings.serving_dir())
        shown = "no snapshot yet"
        if not data.is_empty():
            k = data.kpis(Filters())
            published = (data.manifest() or {}).get("published_at", "?")
            shown = f"dashboards show {k['queries']:,.0f} queries (snapshot {published})"
        producer = next((s for s in self.services if s.name == "producer"), None)
        if producer is None or producer.alive():
            replay = "replaying" if producer else "nothing to replay"
        elif producer.proc.returncode == 0:
            replay = "replay finished"
        else:
            replay = f"replay FAILED (status {producer.proc.returncode}; see {producer.log})"
        return f"[demo {time.monotonic() - started:6.0f}s] {replay}; {shown}"

    def watch(self) -> None:
        started = last = time.monotonic()
        while True:
            time.sleep(1)
            for s in self.services:
                if s.name != "producer" and not s.alive():
                    raise DemoError(f"{s.name} exited with status {s.proc.returncode}; see {s.log}")
            if time.monotonic() - last >= STATUS_EVERY_S:
                last = time.monotonic()
                try:
                    print(self.status_line(started), flush=True)
                except Exception as exc:  # a status line must never stop the demo
                    print(f"[demo] status unavailable: {exc}", flush=True)

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
        demo.prepare_dagster_home()
        demo.start_docs()
        demo.start_dagster()
        demo.start_producer(demo.replay_file(replay_source))
        demo.start_dashboards()
        demo.print_urls()
        demo.watch()
    except KeyboardInterrupt:
        pass
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return_code = 1
    finally:
        demo.stop()
    return return_code
