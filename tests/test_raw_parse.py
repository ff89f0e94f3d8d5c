"""parse.py: JSON message values -> typed rows + dead letters (pure functions, no broker)."""

import json

import pyarrow as pa
import pytest

from pipeline_assets import schema
from pipeline_assets.kafka import messages
from pipeline_assets.raw.dump import parse
from pipeline_assets.source import generator


@pytest.fixture(scope="module")
def rows() -> pa.Table:
    return generator.generate(2_000, seed=5)


def encoded(table: pa.Table) -> list[bytes]:
    """Message values exactly as the project's producer writes them."""
    _, values = messages.encode(table.combine_chunks().to_batches()[0])
    return [v.encode() for v in values.to_pylist()]


def test_good_messages_come_back_unchanged(rows: pa.Table) -> None:
    parsed = parse.parse_values(encoded(rows))
    assert parsed.dead == []
    assert parsed.good.tolist() == list(range(rows.num_rows))
    assert parsed.table.equals(rows.cast(schema.ARROW_SCHEMA))


def base_row() -> dict:
    return {
        "deployment": "provisioned",
        "instance_id": 7,
        "query_id": 42,
        "arrival_timestamp": "2024-03-01T10:00:00.000001",
        "query_type": "select",
        "was_aborted": False,
        "mbytes_scanned": 1.5,
    }


def with_(**changes: object) -> bytes:
    row = base_row()
    for name, value in changes.items():
        if value is ...:
            del row[name]
        else:
            row[name] = value
    return json.dumps(row).encode()


# (value, expected kind, expected field)
BAD = [
    (None, "empty_message", None),
    (b"", "empty_message", None),
    (b'{"deployment": "provisioned", "query_type": "caf\xe9"}', "not_utf8", None),
    (b'{"deployment": "provisioned",', "bad_json", None),
    (b'{"a": 1}{"b": 2}', "bad_json", None),
    (b"[1, 2, 3]", "not_object", None),
    (b'"just a string"', "not_object", None),
    (b'{"query_id": 1, "query_id": 2}', "duplicate_field", "query_id"),
    (with_(query_id=...), "missing_field", "query_id"),
    (with_(instance_id=None), "null_field", "instance_id"),
    (with_(query_type="  "), "empty_field", "query_type"),
    (with_(deployment=""), "empty_field", "deployment"),
    (with_(instance_id="7"), "wrong_type", "instance_id"),
    (with_(instance_id=7.5), "wrong_type", "instance_id"),
    (with_(was_aborted=1), "wrong_type", "was_aborted"),
    (with_(read_table_ids=[1, 2]), "wrong_type", "read_table_ids"),
    (with_(mbytes_scanned="big"), "wrong_type", "mbytes_scanned"),
    (with_(query_id=2**64), "out_of_range", "query_id"),
    (with_(arrival_timestamp="2024-02-30T00:00:00"), "bad_timestamp", "arrival_timestamp"),
    (with_(arrival_timestamp="yesterday"), "bad_timestamp", "arrival_timestamp"),
    (with_(arrival_timestamp=1709287200), "wrong_type", "arrival_timestamp"),
]


@pytest.mark.parametrize(("value", "kind", "field"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_each_bad_message_gets_its_reason(value: bytes | None, kind: str, field: str | None) -> None:
    good = with_()
    parsed = parse.parse_values([good, value, good])
    assert parsed.good.tolist() == [0, 2]
    assert parsed.table.num_rows == 2
    [dead] = parsed.dead
    assert (dead.index, dead.kind, dead.field) == (1, kind, field)
    if field is not None:
        assert f"'{field}'" in dead.reason


def test_bad_messages_inside_a_big_batch_leave_the_rest_intact(rows: pa.Table) -> None:
    values = encoded(rows)
    bad_at = {5: b"{oops", 700: with_(query_id=None), 1999: b"\xff\xfe"}
    for i, value in bad_at.items():
        values[i] = value
    parsed = parse.parse_values(values)
    assert [d.index for d in parsed.dead] == sorted(bad_at)
    keep = [i for i in range(rows.num_rows) if i not in bad_at]
    assert parsed.good.tolist() == keep
    assert parsed.table.equals(rows.take(keep).cast(schema.ARROW_SCHEMA))


def test_zone_offsets_are_read_as_utc_and_unknown_fields_ignored() -> None:
    parsed = parse.parse_values(
        [with_(arrival_timestamp="2024-03-01T10:00:00+02:00", extra="ignored"), with_(arrival_timestamp="2024-03-01")]
    )
    assert parsed.dead == []
    assert [str(t) for t in parsed.table.column("arrival_timestamp").to_pylist()] == [
        "2024-03-01 08:00:00",
        "2024-03-01 00:00:00",
    ]


def test_trailing_whitespace_is_not_a_reason_to_reject() -> None:
    parsed = parse.parse_values([with_() + b"\r\n", with_(query_id=43)])
    assert parsed.dead == []
    assert parsed.table.column("query_id").to_pylist() == [42, 43]
