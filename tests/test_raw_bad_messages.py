"""The raw dump through Dagster: 200k good rows plus 1% bad messages of 11 kinds, interleaved,
and a few heavy poison messages (the demo's 100,000-level array, messages over the size limit).

Exact counts of rows and dead letters, each dead letter's reason and field, the rows' values
and Kafka metadata, the materialization metadata and both asset checks.
"""

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Producer
from raw_support import (
    assert_offsets_exactly_once,
    dead_rows,
    group_offsets,
    high_watermarks,
    raw_rows,
    use_private_dirs,
)

from pipeline_assets import schema
from pipeline_assets.kafka import messages, producer
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.asset import raw_queries
from pipeline_assets.source import generator
from pipeline_assets.warehouse.checks import raw_offsets_contiguous, raw_rows_match_offsets

ROWS = 200_000
BAD_EVERY = 100  # one bad message after every 100 good ones: 1%


def _edit(change: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def apply(value: bytes) -> bytes:
        row = json.loads(value)
        change(row)
        return json.dumps(row).encode()

    return apply


# kind -> (how to spoil a good message, the field the reason must name)
SPOILERS: dict[str, tuple[Callable[[bytes], bytes], str | None]] = {
    "bad_json": (lambda v: v[:-7], None),
    "not_utf8": (lambda v: v.replace(b'"deployment":"', b'"deployment":"\xff\xfe', 1), None),
    "not_object": (lambda v: b"[" + v + b"]", None),
    "empty_message": (lambda v: b"", None),
    "missing_field": (_edit(lambda r: r.pop("query_id")), "query_id"),
    "null_field": (_edit(lambda r: r.update(instance_id=None)), "instance_id"),
    "empty_field": (_edit(lambda r: r.update(query_type="")), "query_type"),
    "wrong_type": (_edit(lambda r: r.update(instance_id=str(r["instance_id"]))), "instance_id"),
    "bad_timestamp": (_edit(lambda r: r.update(arrival_timestamp="2024-13-45T99:00:00")), "arrival_timestamp"),
    "out_of_range": (_edit(lambda r: r.update(query_id=2**70)), "query_id"),
    "bad_unicode": (lambda v: v.replace(b'"query_type":"', b'"query_type":"\\ud800', 1), "query_type"),
}
# Under the broker's ~1 MB limit, over the dump's (set by the test): an `oversized` dead letter.
MAX_MESSAGE_BYTES = 256 << 10
DEEP = b"[" * 100_000 + b"]" * 100_000  # the demo's message that wedged the consumer
# kind -> how to make a heavy poison message from a good one; HEAVY_COUNT of each, spread out.
HEAVY: dict[str, Callable[[bytes], bytes]] = {
    "too_deep": lambda v: DEEP,
    "oversized": lambda v: v[:-1] + b',"padding":"' + b"x" * (MAX_MESSAGE_BYTES + 1000) + b'"}',
}
HEAVY_COUNT = 3


def produce_with_bad_messages(bootstrap: str, topic: str, table: pa.Table) -> Counter:
    """Good rows encoded by the project's message encoder, a bad one after every BAD_EVERY, and
    HEAVY_COUNT of each heavy kind after evenly spaced good rows."""
    # A small local queue, so that it does fill up and producer.send's wait-and-retry is used.
    kafka = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20, "partitioner": "murmur2_random",
         "queue.buffering.max.messages": 5_000}
    )  # fmt: skip
    kinds = list(SPOILERS)
    heavy_at = {table.num_rows * (k + 1) // (HEAVY_COUNT + 1) + j: kind for j, kind in enumerate(HEAVY)
                for k in range(HEAVY_COUNT)}  # fmt: skip
    produced: Counter = Counter()
    n = 0
    for batch in table.to_batches(max_chunksize=20_000):
        good_keys, good_values = messages.encode(batch)
        keys, values = [], []
        for key, value in zip(good_keys.to_pylist(), good_values.to_pylist(), strict=True):
            keys.append(key.encode())
            values.append(value.encode())
            n += 1
            bad = []
            if n % BAD_EVERY == 0:
                kind = kinds[(n // BAD_EVERY) % len(kinds)]
                bad.append((kind, SPOILERS[kind][0](values[-1])))
            if n in heavy_at:
                bad.append((heavy_at[n], HEAVY[heavy_at[n]](values[-1])))
            for kind, spoiled in bad:
                keys.append(keys[-1])
                values.append(spoiled)
                produced[kind] += 1
        producer.send(kafka, topic, keys, values)
    assert kafka.flush(60) == 0
    return produced


@pytest.mark.kafka
@pytest.mark.slow
def test_bad_messages_go_to_dead_letters_with_their_reason(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path, kafka_topic)
    monkeypatch.setenv("REDSET_MAX_MESSAGE_BYTES", str(MAX_MESSAGE_BYTES))
    table = generator.generate(ROWS, seed=21)
    produced = produce_with_bad_messages(kafka_broker, kafka_topic, table)
    bad = sum(produced.values())
    assert bad == ROWS // BAD_EVERY + HEAVY_COUNT * len(HEAVY) and len(produced) == len(SPOILERS) + len(HEAVY)
    assert {produced[kind] for kind in HEAVY} == {HEAVY_COUNT}

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [raw_queries, raw_offsets_contiguous, raw_rows_match_offsets],
        resources={"kafka": KafkaResource()},
        run_config={"ops": {"raw_queries": {"config": {"chunk_size": 20_000, "commit_every": 60_000}}}},
        instance=instance,
    )
    assert result.success

    # Metadata of the materialization.
    [materialization] = result.asset_materializations_for_node("raw_queries")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["rows_written"] == ROWS
    assert meta["dead_letters"] == bad
    assert meta["dead_letters_by_kind"] == dict(sorted(produced.items()))
    assert meta["messages_consumed"] == ROWS + bad
    assert meta["lag_after"] == 0
    highs = high_watermarks(kafka_broker, kafka_topic)
    assert meta["offsets_consumed"] == {str(p): {"from": 0, "to": h - 1} for p, h in highs.items()}
    days = pc.unique(pc.cast(table.column("arrival_timestamp"), pa.date32())).to_pylist()
    assert meta["arrival_dates"] == sorted(d.isoformat() for d in days)
    assert meta["bytes_written"] > 0 and meta["rows_per_second"] > 0
    assert "| deployment |" in meta["preview"]

    # Both checks ran and passed.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"raw_offsets_contiguous", "raw_rows_match_offsets"}
    assert all(e.passed for e in checks.values()), {n: e.description for n, e in checks.items()}

    # The rows: exactly the generated ones, typed, with their Kafka metadata.
    rows = raw_rows()
    assert rows.num_rows == ROWS
    order = [("deployment", "ascending"), ("instance_id", "ascending"), ("query_id", "ascending")]
    got = rows.select(schema.COLUMN_NAMES).sort_by(order)
    assert got.equals(table.cast(schema.ARROW_SCHEMA).sort_by(order))
    assert pc.all(pc.equal(rows.column("kafka_topic"), kafka_topic)).as_py()
    expected_keys = pc.binary_join_element_wise(rows["deployment"], pc.cast(rows["instance_id"], pa.string()), ":")
    assert pc.all(pc.equal(rows.column("kafka_key"), expected_keys)).as_py()
    assert rows.column("kafka_timestamp").null_count == 0
    assert set(rows.column("batch_id").to_pylist()) == {result.run_id}
    assert rows.column("source_file").null_count == ROWS

    # The dead letters: one per bad message, the reason's kind and the field it names.
    dead = dead_rows()
    assert dead.num_rows == bad
    assert Counter(r.split(":", 1)[0] for r in dead.column("reason").to_pylist()) == produced
    heavy_sizes: Counter = Counter()
    for row in dead.to_pylist():
        kind = row["reason"].split(":", 1)[0]
        field = SPOILERS[kind][1] if kind in SPOILERS else None
        assert row["field"] == field, row
        if field is not None:
            assert f"'{field}'" in row["reason"]
        assert row["kafka_topic"] == kafka_topic and row["batch_id"] == result.run_id
        if kind == "not_object":
            assert row["raw_value"].startswith(b"[{")  # the raw bytes are kept as they came
        if kind in HEAVY:
            heavy_sizes[kind, len(row["raw_value"])] += 1
    # Every byte of the heavy ones kept too: the whole 200 KB array, the whole oversized message.
    assert heavy_sizes[("too_deep", len(DEEP))] == HEAVY_COUNT
    oversized = [size for (kind, size), n in heavy_sizes.items() for _ in range(n) if kind == "oversized"]
    assert len(oversized) == HEAVY_COUNT and min(oversized) > MAX_MESSAGE_BYTES
    assert "100000 levels" in next(r for r in dead.column("reason").to_pylist() if r.startswith("too_deep"))

    # Every offset once, in the rows or the dead letters; the group committed them all.
    everything = pa.concat_tables(
        [rows.select(["kafka_partition", "kafka_offset"]), dead.select(["kafka_partition", "kafka_offset"])]
    )
    assert assert_offsets_exactly_once(everything, highs) == 0
    assert {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == highs
