"""Compare two engines' copies of the same tables row for row (tests/test_spark_engine.py).

Rows are sorted by every non-float column, then by the floats; keys and other non-float values
must be equal, floats equal to a relative 1e-9 (NaN equals NaN, NULL equals NULL only)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

RELATIVE = 1e-9


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in name order, timestamps naive UTC, integers as Python ints, sorted rows."""
    frame = frame[sorted(frame.columns)].copy()
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            frame[name] = column.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name] = frame[name].astype("datetime64[us]")
    floats = [n for n in frame.columns if pd.api.types.is_float_dtype(frame[n])]
    others = [n for n in frame.columns if n not in floats]
    keys = [frame[n].map(_sort_key) for n in others + floats]
    order = sorted(range(len(frame)), key=lambda i: tuple(k.iat[i] for k in keys))
    return frame.iloc[order].reset_index(drop=True)


def _sort_key(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return (0, "")
    if isinstance(value, (np.integer, np.floating, int, float)) and not isinstance(value, bool):
        return (1, float(value))
    return (2, str(value))


def differences(name: str, left: pd.DataFrame, right: pd.DataFrame, limit: int = 5) -> list[str]:
    """What differs between two copies of table `name` (empty: the same)."""
    if set(left.columns) != set(right.columns):
        return [f"{name}: columns differ: only left {sorted(set(left.columns) - set(right.columns))}, "
                f"only right {sorted(set(right.columns) - set(left.columns))}"]
    if len(left) != len(right):
        return [f"{name}: {len(left)} rows vs {len(right)}"]
    left, right = normalized(left), normalized(right)
    found = []
    for column in left.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x, y = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            same = (np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=RELATIVE, atol=0.0)
        else:
            same = np.array([_equal(p, q) for p, q in zip(a, b)], dtype=bool)
        for i in np.flatnonzero(~same)[:limit]:
            found.append(f"{name}.{column} row {i}: {a.iat[i]!r} vs {b.iat[i]!r}")
    return found


def _equal(p, q) -> bool:
    missing_p, missing_q = _missing(p), _missing(q)
    if missing_p or missing_q:
        return missing_p and missing_q
    if isinstance(p, (np.integer, int)) and isinstance(q, (np.integer, int)):
        return int(p) == int(q)
    return p == q


def _missing(value) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
