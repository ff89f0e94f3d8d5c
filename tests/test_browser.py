"""A real browser: headless Chromium (Debian's package) renders the dashboard pages and the
Dagster asset lineage page; the rendered DOM must show the expected text. Screenshots go to
test-output/ for a person to look at.

`make test` installs Chromium first (`make browser`). The dashboards read the serving folder the
real pipeline built (tests/serving_pipeline.py), and for the Kafka page the session's broker: a
topic with messages, a group that committed some of them, and dead letters of that topic, one
full of <script> and Markdown (`kafka_side`). The Dagster webserver loads workspace.yaml.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import serving_pipeline
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import free_ports
from serving_pipeline import Built

from pipeline_assets import demo, schema, settings
from pipeline_assets.demo import browser_shots
from pipeline_assets.raw import dead_letters
from pipeline_assets.raw.dump import checkpoint

OUTPUT = settings.PROJECT_ROOT / "test-output"
APP = settings.PROJECT_ROOT / "pipeline_assets" / "serving" / "dashboard" / "app.py"
START_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return serving_pipeline.build(tmp_path_factory)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not browser_shots.CHROMIUM.exists():
        pytest.fail(f"{browser_shots.CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    OUTPUT.mkdir(exist_ok=True)
    return browser_shots.CHROMIUM


def tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def wait_until_answers(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, f"{proc.args[0]} exited; log:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{url} did not answer; log:\n{log.read_text()[-3000:]}"
        time.sleep(1)


@contextmanager
def serve(cmd: list[str], env: dict[str, str], health_url: str, log: Path) -> Iterator[None]:
    """Run a server in its own process group until the test module is done."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=settings.PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_answers(health_url, proc, log)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# A producer's bytes that would run a script, load an image and format text if a page rendered them.
HOSTILE = b"<script>document.title=1</script> **bold** _em_ [click](javascript:alert(1)) <img src=x onerror=alert(2)>"
MESSAGES, COMMITTED = 10, 4  # per partition: produced, and committed by the group
LAG = 3 * (MESSAGES - COMMITTED) + 1  # the hostile message is one more on partition 0


@pytest.fixture(scope="module")
def kafka_side(kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The Kafka page's settings: a 3-partition topic with MESSAGES per partition and HOSTILE on
    partition 0, a group that committed COMMITTED per partition, and two dead letters of the topic
    (HOSTILE the newest, so the page opens it first)."""
    topic, group = f"test.browser.{uuid.uuid4().hex[:8]}", f"test-browser-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka_broker})
    for partition in range(3):
        for _ in range(MESSAGES):
            producer.produce(topic, value=b"{}", partition=partition)
    producer.produce(topic, value=HOSTILE, partition=0)
    assert producer.flush(30) == 0
    committer = Consumer({"bootstrap.servers": kafka_broker, "group.id": group, "enable.auto.commit": False})
    # The raw dump's commit: it waits out a new broker's coordinator (NOT_COORDINATOR at first).
    checkpoint.commit(committer, [TopicPartition(topic, p, COMMITTED) for p in range(3)], print)
    committer.close()
    dead_dir = tmp_path_factory.mktemp("kafka-page") / "dead_letters"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for name, value, reason, offset, partition, at in [
        ("old", b"\xff\xfe", "not_utf8: 'utf-8' codec can't decode byte 0xff", 3, 1, now - timedelta(minutes=5)),
        ("hostile", HOSTILE, "bad_json: Expecting value: line 1 column 1 (char 0)", MESSAGES, 0, now),
    ]:  # fmt: skip
        kafka = pa.table({"kafka_topic": pa.array([topic]), "kafka_partition": pa.array([partition], pa.int32()),
                          "kafka_offset": pa.array([offset], pa.int64()), "kafka_timestamp": pa.array([at], schema.TIMESTAMP),
                          "kafka_key": pa.nulls(1, pa.string())})  # fmt: skip
        table = dead_letters.dead_letter_table(raw_values=[value], reasons=[reason], fields=[None], batch_id=name,
                                               ingested_at=at, kafka=kafka)  # fmt: skip
        dead_letters.write(table, dead_dir, f"{topic}-p{partition}-o{offset}-{offset}.parquet")
    yield {"KAFKA_BOOTSTRAP_SERVERS": kafka_broker, "REDSET_TOPIC": topic, "REDSET_CONSUMER_GROUP": group,
           "REDSET_DEAD_LETTER_DIR": str(dead_dir)}  # fmt: skip
    admin.delete_topics([topic])[topic].result(timeout=30)


@pytest.fixture(scope="module")
def dashboards(built: Built, kafka_side: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    cmd = [
        tool("streamlit"), "run", str(APP), "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    env = {**os.environ, **built.env(), **kafka_side}
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with serve(cmd, env, f"http://127.0.0.1:{port}/_stcore/health", log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    home = tmp_path_factory.mktemp("dagster-home")
    base = f"http://127.0.0.1:{port}"
    cmd = [tool("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with serve(cmd, {**os.environ, "DAGSTER_HOME": str(home)}, f"{base}/server_info", home / "webserver.log"):
        browser_shots.dagster_ready(base, START_TIMEOUT_S)  # code location loaded, pop-up dismissed
        yield base


def render(url: str, expected: list[str], screenshot: str, profile: Path, size: str) -> str:
    """The page's text, and its screenshot in test-output/ (the shared helper waits out loading)."""
    return browser_shots.render(url, expected, OUTPUT / screenshot, profile, size)


def test_aggregate_page_renders_kpis_and_charts(chromium: Path, dashboards: str, tmp_path: Path) -> None:
    expected = ["Fleet: aggregate view", "Total queries", f"{serving_pipeline.ROWS:,}", "Query types",
                "Queries per hour", "Cache hit rate", "Leaderboards", "Top 10 longest compiles"]  # fmt: skip
    expected += ["Instances that changed most", "Execution time from the top 1%"]
    expected += ["Forecast accuracy", "Anomalies per instance", "Repetition and cache opportunity", "Missed-cache share"]
    text = render(f"{dashboards}/", expected, "dashboard-aggregate.png", tmp_path / "p", "1400,2600")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text and "No serving data yet" not in text


def test_expert_page_renders_one_instance(chromium: Path, dashboards: str, tmp_path: Path) -> None:
    expected = ["Expert view: one instance", "Instance (busiest first)", "Stress index",
                "Execution time percentiles per hour", "Workload per table", "Minutes since the last ingest"]  # fmt: skip
    expected += ["Workload drift and tail concentration"]
    expected += ["Forecast: next 168 hours", "Anomaly tags", "Repeat share and cache hit rate per day"]
    expected += ["Evidence: the query rows behind each insight"]
    text = render(f"{dashboards}/expert", expected, "dashboard-expert.png", tmp_path / "p", "1400,2400")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text


@pytest.mark.kafka
def test_kafka_page_shows_topics_lag_and_dead_letters_as_text(
    chromium: Path, dashboards: str, kafka_side: dict[str, str], tmp_path: Path
) -> None:
    topic = kafka_side["REDSET_TOPIC"]
    expected = ["Kafka", "Topics", "Messages per second", topic, "Consumer groups", "Lag (messages)", f"{LAG:,}",
                "Dead letters", "Dead letters by kind", "bad_json", "not_utf8", "Download the raw bytes"]  # fmt: skip
    dom, text = browser_shots.render_dom(f"{dashboards}/kafka", expected, OUTPUT / "dashboard-kafka.png",
                                         tmp_path / "p", "1400,2900")  # fmt: skip
    missing = [e for e in expected if e not in text]
    assert not missing, f"not rendered: {missing}; page text: {text[:2000]}"
    assert "Traceback" not in text and "did not answer" not in text
    # The opened letter is in the DOM as escaped text, never as elements or formatted Markdown.
    assert HOSTILE.decode() in text
    assert "&lt;script&gt;document.title=1&lt;/script&gt;" in dom
    assert "<script>document.title" not in dom and "<img src=x" not in dom and '<img src="x"' not in dom
    assert "<strong>bold</strong>" not in dom and 'href="javascript:' not in dom


def test_dagster_lineage_page_shows_the_graph(chromium: Path, dagster_ui: str, tmp_path: Path) -> None:
    # Upstream of the snapshot: the marts, the staging view, the raw dump and, as external assets,
    # the Kafka topic and the source file.
    expected = ["serving_snapshot", "leaderboard", "query_metrics", "stress_index", "clean_queries", "stg_queries",
                "raw_queries", "redset_kafka_topic", "redset_source"]  # fmt: skip
    url = f"{dagster_ui}/{demo.LINEAGE_PATH}"  # the lineage URL `make demo` prints
    text = render(url, expected, "dagster-lineage.png", tmp_path / "p", "1600,1000")
    missing = [e for e in expected if e not in text]
    assert not missing, f"not in the lineage: {missing}; page text: {text[:2000]}"
    assert "community" not in text.lower(), "the pop-up is still open"
