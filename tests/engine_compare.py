"""Compare two engines' copies of the same table row for row (tests/test_spark_engine.py).

Tables come in as column names plus rows of Python values. Rows are sorted by every column
(floats last); every column must be equal, floats to a relative 1e-9 (NaN equals NaN, NULL only
NULL), and both copies must have the same columns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

RELATIVE = 1e-9


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_float(value) -> bool:
    return isinstance(value, float)


def _sort_key(value):
    if _missing(value):
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    if isinstance(value, datetime):
        return (2, 0.0, value.isoformat())
    return (3, 0.0, str(value))


def differences(name: str, left: tuple[Sequence[str], list[tuple]], right: tuple[Sequence[str], list[tuple]],
                limit: int = 5) -> list[str]:
    """What differs between two copies (columns, rows) of table `name`; empty when they match."""
    (left_names, left_rows), (right_names, right_rows) = left, right
    if set(left_names) != set(right_names):
        return [f"{name}: columns differ: only left {sorted(set(left_names) - set(right_names))}, "
                f"only right {sorted(set(right_names) - set(left_names))}"]
    if len(left_rows) != len(right_rows):
        return [f"{name}: {len(left_rows)} rows vs {len(right_rows)}"]
    names = sorted(left_names)
    floats = {n for n in names if any(_is_float(r[left_names.index(n)]) for r in left_rows)
              or any(_is_float(r[right_names.index(n)]) for r in right_rows)}
    order = [n for n in names if n not in floats] + sorted(floats)

    def rows(column_names, data):
        positions = [list(column_names).index(n) for n in order]
        return sorted(([row[p] for p in positions] for row in data), key=lambda r: [_sort_key(v) for v in r])

    found = []
    for i, (a, b) in enumerate(zip(rows(left_names, left_rows), rows(right_names, right_rows))):
        for column, p, q in zip(order, a, b):
            if not _same(p, q, column in floats):
                found.append(f"{name}.{column} row {i}: {p!r} vs {q!r}")
        if len(found) >= limit:
            break
    return found


def _same(p, q, is_float: bool) -> bool:
    if _missing(p) or _missing(q):  # NULL equals only NULL, NaN only NaN
        return (p is None and q is None) or (p is not None and q is not None and _missing(p) and _missing(q))
    if is_float:
        return math.isclose(float(p), float(q), rel_tol=RELATIVE, abs_tol=0.0)
    return p == q


# A contract's DuckDB type -> the Spark type (DataType.simpleString()) of the same column.
SPARK_TYPES = {"varchar": "string", "bigint": "bigint", "integer": "int", "double": "double",
               "timestamp": "timestamp", "date": "date", "boolean": "boolean"}  # fmt: skip


def contract_differences(manifest: dict, spark_columns: dict[str, dict[str, str]]) -> list[str]:
    """Each way a Spark table's columns ({table: {column: simpleString type}}) differ from its
    model's contract (dbt enforces them on DuckDB only: the config `contract` of the served
    models). The contracted models are those whose contract is enforced in a DuckDB manifest, or
    on Spark's (not enforced) whose every column has a data_type. Names compare as sets: Spark
    puts the partition column last."""
    out = []
    for node in manifest["nodes"].values():
        columns = node["columns"]
        if node["resource_type"] != "model" or not columns or not all(c["data_type"] for c in columns.values()):
            continue
        actual = spark_columns.get(node["name"])
        if actual is None:
            out.append(f"{node['name']}: no Spark table")
            continue
        expected = {name: SPARK_TYPES.get(c["data_type"], c["data_type"]) for name, c in columns.items()}
        for name in sorted(set(expected) | set(actual)):
            if expected.get(name) != actual.get(name):
                out.append(f"{node['name']}.{name}: contract {expected.get(name)}, Spark {actual.get(name)}")
    return out
