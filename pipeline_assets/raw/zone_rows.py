"""Rows for the raw zone: typed rows plus provenance as schema.RAW_SCHEMA, split by arrival
date (one Hive partition each) or by any integer key (e.g. Kafka partition)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_assets import schema

_EPOCH = date(1970, 1, 1)  # day 0 of Arrow's date32


def to_raw_table(typed: pa.Table, provenance: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Table:
    """Typed rows (schema.ARROW_SCHEMA) plus provenance columns -> schema.RAW_SCHEMA.

    Provenance columns not given (e.g. kafka_* for landing rows) are null.
    """
    n = typed.num_rows
    columns = [typed.column(f.name) for f in schema.ARROW_SCHEMA]
    for f in list(schema.RAW_SCHEMA)[len(schema.ARROW_SCHEMA) :]:
        column = provenance.get(f.name)
        columns.append(pa.nulls(n, f.type) if column is None else column)
    return pa.Table.from_arrays(columns, schema=schema.RAW_SCHEMA)


def split_by_arrival_date(table: pa.Table) -> Iterable[tuple[date, pa.Table]]:
    """(day, rows of that day) for each arrival date in the table, in date order."""
    days = pc.cast(pc.cast(table.column("arrival_timestamp"), pa.date32()), pa.int32()).to_numpy()
    for day, rows in split_rows(table, days):
        yield _EPOCH + timedelta(days=day), rows


def split_rows(table: pa.Table, keys: np.ndarray) -> Iterable[tuple[int, pa.Table]]:
    """(key, rows with that key) for each distinct integer key, in key order; rows keep their order.

    One stable sort and one take, then zero-copy slices: a filter per key went over the whole
    table once per key (a tenth of the raw dump's worker thread in the profile).
    """
    if keys.size == 0:
        return
    if (keys == keys[0]).all():
        yield int(keys[0]), table
        return
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    table = table.take(order)
    starts = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist()]
    for start, end in zip(starts, [*starts[1:], keys.size]):
        yield int(keys[start]), table.slice(start, end - start)
