"""Rows to Kafka messages (pure: no broker): the JSON text and the keys."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pyarrow as pa
import pytest

from pipeline_assets import schema
from pipeline_assets.kafka import messages
from pipeline_assets.source import generator


def _batch(**columns: list) -> pa.RecordBatch:
    """A schema-typed batch; columns not given are NULL."""
    rows = len(next(iter(columns.values())))
    arrays = [
        pa.array(columns[f.name], f.type) if f.name in columns else pa.nulls(rows, f.type) for f in schema.ARROW_SCHEMA
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema.ARROW_SCHEMA)


def test_values_are_json_objects_with_the_schema_columns_in_order() -> None:
    table = generator.generate(2_000, seed=3)
    keys, values = messages.encode(table.to_batches()[0])
    for key, text in zip(keys.to_pylist(), values.to_pylist()):
        decoded = json.loads(text)
        assert list(decoded) == list(schema.COLUMN_NAMES)
        assert key == schema.message_key(decoded["deployment"], decoded["instance_id"])


def test_awkward_values_round_trip_exactly() -> None:
    strings = ["", 'say "hi"', "back\\slash", "tab\there", "line\nbreak\r", "\x00\x1f", "é 漢字 \u2028 😀", None]
    floats = [0.0, -0.0, 4.0, 0.1, 1e21, 1.2345678901234567e-7, 5e-324, 1.7976931348623157e308]
    stamps = [datetime(2024, 3, 1), datetime(2024, 5, 31, 23, 59, 59, 999_999), datetime(1999, 12, 31, 0, 0, 0, 1)]
    n = len(strings)
    batch = _batch(
        deployment=["serverless"] * n,
        instance_id=[0, -1, 2**63 - 1, -(2**63), 7, 8, 9, 10],
        query_id=list(range(n)),
        feature_fingerprint=strings,
        mbytes_scanned=floats,
        arrival_timestamp=(stamps * 3)[:n],
        was_cached=[True, False, None, True, False, None, True, False],
    )
    _, values = messages.encode(batch)
    for expected, text in zip(batch.to_pylist(), values.to_pylist()):
        decoded = json.loads(text)
        decoded["arrival_timestamp"] = datetime.fromisoformat(decoded["arrival_timestamp"])
        assert decoded == expected
        for name, value in expected.items():
            assert type(decoded[name]) is type(value), name  # 4.0 stays a float, True is no 1
        assert math.copysign(1, decoded["mbytes_scanned"]) == math.copysign(1, expected["mbytes_scanned"])


def test_text_matches_json_dumps_for_the_simple_cases() -> None:
    batch = _batch(
        deployment=["provisioned"], instance_id=[3], query_id=[9], cluster_size=[4.0],
        arrival_timestamp=[datetime(2024, 3, 1, 12, 30)], was_aborted=[False], query_type=["select"],
    )  # fmt: skip
    keys, values = messages.encode(batch)
    expected = {n: None for n in schema.COLUMN_NAMES} | {
        "deployment": "provisioned", "instance_id": 3, "query_id": 9, "cluster_size": 4.0,
        "arrival_timestamp": "2024-03-01T12:30:00.000000", "was_aborted": False, "query_type": "select",
    }  # fmt: skip
    assert values.to_pylist() == [json.dumps(expected, separators=(",", ":"))]
    assert keys.to_pylist() == ["provisioned:3"]


def test_nan_and_infinity_become_null() -> None:
    batch = _batch(deployment=["provisioned"] * 3, instance_id=[1] * 3, query_id=[1, 2, 3],
                   mbytes_spilled=[math.nan, math.inf, -math.inf])  # fmt: skip
    _, values = messages.encode(batch)
    assert [json.loads(v)["mbytes_spilled"] for v in values.to_pylist()] == [None, None, None]


def test_batches_in_other_types_are_conformed_first() -> None:
    """A batch whose columns are out of order and int32 encodes like the schema-typed one."""
    typed = _batch(
        deployment=["serverless"], instance_id=[5], query_id=[6], arrival_timestamp=[datetime(2024, 3, 2)]
    )
    shuffled = pa.RecordBatch.from_arrays(
        [typed.column(n).cast(pa.int32()) if n in ("instance_id", "query_id") else typed.column(n)
         for n in reversed(schema.COLUMN_NAMES)],
        names=list(reversed(schema.COLUMN_NAMES)),
    )  # fmt: skip
    assert messages.encode(shuffled)[1].equals(messages.encode(typed)[1])


def test_zoned_timestamps_are_refused() -> None:
    with pytest.raises(TypeError, match="time zone"):
        messages.json_values(pa.array([0], pa.timestamp("us", tz="UTC")))
