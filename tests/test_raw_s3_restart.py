"""The S3 server stops mid-dump (the project's S3Proxy, its own for this test): nothing is committed
that is not on the bucket, and the next dump, once the server is back, takes every message."""

from pathlib import Path

import pytest
from raw_support import assert_offsets_exactly_once, group_offsets, high_watermarks, produce_rows, raw_rows, use_private_dirs

from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump import consume as kafka_consume
from pipeline_assets.raw.dump.options import zone_folders
from pipeline_assets.s3 import server

ROWS = 3_000


def dump(options: kafka_consume.DumpOptions, log=lambda _: None) -> kafka_consume.DumpStats:
    consumer = KafkaResource().consumer(options.group_id, **kafka_consume.CONSUMER_TUNING)
    try:
        return kafka_consume.dump(consumer, options, log=log)
    finally:
        consumer.close()


@pytest.mark.kafka
def test_s3_stopping_mid_dump_leaves_the_offsets_uncommitted_and_the_dump_resumes(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "s3"
    own = server.start_on_free_port(home, bucket="redset")  # our own: stopping the session's would disturb others
    try:
        for name, value in own.environment().items():
            monkeypatch.setenv(name, value)
        group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
        monkeypatch.setenv("REDSET_STORAGE_URL", "s3://redset/zones")
        produce_rows(kafka_broker, kafka_topic, ROWS, 71, tmp_path)
        highs = high_watermarks(kafka_broker, kafka_topic)
        options = kafka_consume.DumpOptions(
            topic=kafka_topic, group_id=group, batch_id="s3-stop", max_messages=ROWS, chunk_size=500,
            commit_every=1_000, **zone_folders(),  # type: ignore[arg-type]
        )  # fmt: skip

        def stop_once_planned(line: str) -> None:
            """The dump's plan is its first line, logged before it consumes: the server stops there."""
            if "this run takes" in line:
                server.stop(home, quiet=True)

        with pytest.raises(Exception) as raised:  # the first checkpoint's upload finds no server
            dump(options, log=stop_once_planned)
        assert "redset/zones/raw" in str(raised.value) or "127.0.0.1" in str(raised.value), raised.value
        assert all(o.committed is None for o in group_offsets(kafka_broker, kafka_topic, group))

        server.start(port=own.port, home=home, bucket="redset", quiet=True)
        stats = dump(options)
        assert stats.messages == ROWS  # everything again: nothing had been committed
        rows = raw_rows(["kafka_partition", "kafka_offset"])
        duplicates = assert_offsets_exactly_once(rows, highs)
        assert rows.num_rows == ROWS + duplicates
        assert {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == highs
    finally:
        server.stop(home, quiet=True)
