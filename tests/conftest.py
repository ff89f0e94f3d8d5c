"""Shared fixtures.

Kafka: tests talk to a real Apache Kafka broker, started through the project's own
pipeline_assets.kafka.broker on free ports with its own temporary storage and logs (the jar
cache under settings.kafka_home()/jars is shared and fetched once). Several people run the
suite at the same time, so nothing here uses the fixed port 9092.

S3: the project's own S3-compatible server (S3Proxy, pipeline_assets.s3.server) on a free port in a
temporary home, one per xdist worker (its jar cache under .s3/jars is shared and fetched once).

PostgreSQL: a real server from the machine's initdb/pg_ctl (tests/postgres_support.py), on a free
port in a temporary folder, as a non-root user when the suite runs as root.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import postgres_support
import pytest

from pipeline_assets.kafka import broker
from pipeline_assets.s3 import server as s3_server_module
from pipeline_assets.runtime.ports import free_ports  # noqa: F401  (tests import it from here)


def pytest_configure(config: pytest.Config) -> None:
    """A suite started without job control (`make test &` in a script, CI) ignores SIGINT, and each
    in-process Dagster run copies that onto SIGTERM; every program a test starts would inherit it,
    ignore SIGTERM and make each stop wait out its timeout. Run as if started from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The dbt unit tests run in test_dbt_unit_tests.py only, not in every test's own `dbt build`.
    os.environ.setdefault("DBT_EXCLUDE_RESOURCE_TYPES", "unit_test")
    # Nor a `dbt source freshness` after every publish (test_source_freshness.py switches it on).
    os.environ.setdefault("REDSET_RAW_FRESHNESS_CHECK", "0")


def start_test_broker(home: os.PathLike[str] | str) -> broker.Broker:
    """A broker in `home` on free ports, or the test fails saying why."""
    try:
        return broker.start_on_free_ports(home)
    except broker.BrokerError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address ("127.0.0.1:<port>") of a real broker that lives for the test session.

    KAFKA_BOOTSTRAP_SERVERS points at it while the session runs, so code that reads the client
    config from the environment (client_config()) talks to it too.
    """
    home = tmp_path_factory.mktemp("kafka")
    running = start_test_broker(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAFKA_BOOTSTRAP_SERVERS", running.bootstrap)
        try:
            yield running.bootstrap
        finally:
            broker.stop(home, quiet=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3_server_module.Server]:
    """A real S3Proxy for the session, with the bucket `redset`; s3_env points AWS_* at it."""
    home = tmp_path_factory.mktemp("s3")
    try:
        running = s3_server_module.start_on_free_port(home, bucket="redset")
    except s3_server_module.ServerError as exc:
        pytest.fail(str(exc))
    try:
        yield running
    finally:
        s3_server_module.stop(home, quiet=True)


@pytest.fixture
def s3_env(s3_server: s3_server_module.Server, monkeypatch: pytest.MonkeyPatch) -> s3_server_module.Server:
    """AWS_* of the session's S3 server, for this test only."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(params=["local", "s3"])
def zone_storage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """An end-to-end test's zones on local disk (the default) and again on the session's S3 server:
    REDSET_STORAGE_URL=s3://redset/<a prefix of this test>. Returns that URL, or None on disk."""
    if request.param == "local":
        return None
    request.getfixturevalue("s3_env")
    url = f"s3://redset/tests/{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("REDSET_STORAGE_URL", url)
    return url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres_support.PostgresServer]:
    """A real PostgreSQL server for the session; missing binaries fail the test saying what to install."""
    try:
        server = postgres_support.start()
    except postgres_support.PostgresError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_topic(kafka_broker: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new topic with 3 partitions, named after the test; deleted afterwards."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    name = "test." + re.sub(r"[^a-zA-Z0-9._-]", "_", request.node.name)[:150] + "." + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(timeout=30)
    yield name
    try:
        admin.delete_topics([name])[name].result(timeout=30)
    except KafkaException:
        pass  # the broker and its storage go away at the end of the session anyway


@pytest.fixture(autouse=True)
def _restore_main_module():
    """streamlit's AppTest runs a page as __main__ and leaves it in sys.modules; a process started
    with multiprocessing's spawn (the parallel raw dump) would then re-run that temporary script
    and die. Put the session's own __main__ back after every test."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


SLOW_DEFAULT_S = 20  # a module marked slow without its seconds


def module_seconds(items: list[pytest.Item]) -> dict[str, float]:
    """Each module's cost as its tests declare it: `pytest.mark.slow(seconds=N)` (measured alone on a
    quiet machine), SLOW_DEFAULT_S for a bare `slow`, 0 for the rest."""
    cost: dict[str, float] = {}
    for item in items:
        marker = item.get_closest_marker("slow")
        seconds = 0 if marker is None else marker.kwargs.get("seconds", SLOW_DEFAULT_S)
        module = item.nodeid.split("::")[0]
        cost[module] = max(cost.get(module, 0), seconds)
    return cost


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The costliest modules first, each module's own order kept (one process; `make test`'s xdist
    loadscope hands modules out by their number of tests instead, the heaviest first: below)."""
    cost = module_seconds(items)
    items.sort(key=lambda item: -cost[item.nodeid.split("::")[0]])


HEAVY_S = 85  # under xdist, modules declared at least this costly are handed out first


def declared_seconds(module: Path) -> float:
    """A module's `slow(seconds=N)` as written in its source (xdist's controller collects no items)."""
    text = module.read_text() if module.is_file() else ""
    return max((float(s) for s in re.findall(r"slow\(seconds=(\d+)", text)), default=0)


def heaviest_first(scopes: list[str], seconds: dict[str, float]) -> list[str]:
    """`scopes` in their order, but those of at least HEAVY_S seconds first, heaviest leading."""
    heavy = sorted((s for s in scopes if seconds[s] >= HEAVY_S), key=lambda s: -seconds[s])
    return heavy + [s for s in scopes if s not in heavy]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's loadscope order (most tests first), but the heaviest modules first of all: they have
    few tests, so xdist handed them out last, and one then ran alone while the other worker idled."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class HeaviestFirst(LoadScopeScheduling):
        _ordered = False

        def _assign_work_unit(self, node) -> None:
            if not self._ordered:
                self._ordered = True
                seconds = {scope: declared_seconds(config.rootpath / scope) for scope in self.workqueue}
                for scope in reversed(heaviest_first(list(self.workqueue), seconds)):
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return HeaviestFirst(config, log)
