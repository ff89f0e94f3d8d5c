"""The broker stops and starts again (the project's broker module) while the raw dump consumes."""

import threading
import time
from pathlib import Path

import pytest
from conftest import start_test_broker
from raw_support import assert_offsets_exactly_once, group_offsets, high_watermarks, raw_rows, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka import broker, producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump import consume as kafka_consume
from pipeline_assets.source import generator

ROWS = 150_000


def committed_or_none(bootstrap: str, topic: str, group: str) -> int | None:
    try:
        return sum(o.committed or 0 for o in group_offsets(bootstrap, topic, group))
    except Exception:  # the broker is away
        return None


@pytest.mark.kafka
@pytest.mark.slow
def test_nothing_is_lost_when_the_broker_restarts_mid_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "kafka"
    own = start_test_broker(home)  # our own broker: restarting the session's would disturb other tests
    try:
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", own.bootstrap)
        topic = "test.raw.restart"
        group = use_private_dirs(monkeypatch, tmp_path / "data", topic)
        path = generator.write(generator.generate(ROWS, seed=51), tmp_path / "rows.parquet")
        assert producer.produce(path, topic, bootstrap=own.bootstrap, progress=False).errors == 0
        highs = high_watermarks(own.bootstrap, topic)

        options = kafka_consume.DumpOptions(
            topic=topic, group_id=group, raw_dir=settings.raw_dir(), dead_letter_dir=settings.dead_letter_dir(),
            batch_id="restart", max_messages=ROWS, chunk_size=5_000, commit_every=20_000,
        )  # fmt: skip
        consumer = KafkaResource().consumer(group, **kafka_consume.CONSUMER_TUNING)
        outcome: dict = {}

        def run() -> None:
            try:
                outcome["stats"] = kafka_consume.dump(consumer, options, log=lambda _: None)
            except BaseException as exc:  # handed to the test thread below
                outcome["error"] = exc

        dump = threading.Thread(target=run)
        dump.start()
        deadline = time.monotonic() + 300
        while (committed_or_none(own.bootstrap, topic, group) or 0) < 20_000:
            assert dump.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.05)

        assert dump.is_alive(), "the dump finished before the broker could be restarted"
        before_restart = committed_or_none(own.bootstrap, topic, group)
        broker.stop(home, quiet=True)
        time.sleep(2)
        broker.start(port=own.port, controller_port=own.controller_port, home=home, quiet=True)

        dump.join(timeout=600)
        consumer.close()
        assert not dump.is_alive()
        assert "error" not in outcome, outcome.get("error")
        assert before_restart is not None and before_restart < ROWS

        # Nothing lost: every offset is in the raw zone, once after dedupe; all committed.
        rows = raw_rows(["kafka_partition", "kafka_offset"])
        duplicates = assert_offsets_exactly_once(rows, highs)
        assert rows.num_rows == ROWS + duplicates
        assert outcome["stats"].messages >= ROWS - before_restart
        assert {o.partition: o.committed for o in group_offsets(own.bootstrap, topic, group)} == highs
    finally:
        broker.stop(home, quiet=True)
