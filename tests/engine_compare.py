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
