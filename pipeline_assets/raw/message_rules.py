"""One Kafka message value at a time: why it cannot become a row of schema.ARROW_SCHEMA.

The rules behind parse.py (its docstring lists the kinds of dead letter): parse.py reads healthy
chunks in bulk with Arrow and asks `check_message` about every message it does not take as it is.
`check_message` returns a verdict for any bytes and never raises: a value that is too big or
nests too deep is refused before json.loads sees it (json recurses once per level), and numbers
that Python cannot hold (5000-digit integers, 1e400) are kept as text.

Arrow types some values the rules refuse (a null or blank required field, a non-finite float,
a timestamp outside the years 1-9999): `typed_suspects` finds those rows of a typed table, for
`check_message` (or `required_problem`, for typed rows of a landing file) to say why.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_assets import schema, settings
from pipeline_assets.raw.json_nesting import nesting_depth

# Deeper than any Redset message (depth 1) will ever be, far below Python's recursion limit.
MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Every reason starts with one of these; parse.py's docstring says what each means.
KINDS = (
    "empty_message", "oversized", "too_deep", "not_utf8", "bad_json", "not_object", "duplicate_field",
    "missing_field", "null_field", "empty_field", "wrong_type", "out_of_range", "bad_timestamp",
    "bad_unicode", "unparseable",
)  # fmt: skip
_MAX_INT_DIGITS = 4000  # json.loads raises ValueError beyond Python's 4300-digit limit
# The shapes Arrow's ISO-8601 timestamp parser accepts (fractions up to microseconds).
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}([ T]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?", re.ASCII
)
_FLOATS = tuple(c.name for c in schema.COLUMNS if pa.types.is_floating(c.type))
_TIMESTAMPS = tuple(c.name for c in schema.COLUMNS if pa.types.is_timestamp(c.type))
# Python's datetime range (years 1-9999), which _is_timestamp meets as a ValueError or OverflowError.
_EARLIEST_US, _LATEST_US = ((t - datetime(1970, 1, 1)) // timedelta(0, 0, 1) for t in (datetime.min, datetime.max))


@dataclass(frozen=True)
class DeadLetter:
    """A message of the batch that could not be parsed or typed."""

    index: int  # position of the message in the batch
    reason: str  # "<kind>: <detail naming the field>"
    field: str | None = None

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


class _Invalid(Exception):
    def __init__(self, kind: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.field = field


class _Huge:
    """A number literal Python cannot hold as it is (an integer beyond int()'s 4300 digits, a
    float beyond float64 that would read as inf): kept as its text."""

    def __init__(self, text: str, kind: str) -> None:
        self.text, self.kind = text, kind

    def __str__(self) -> str:
        return self.text if len(self.text) <= 24 else f"{self.text[:20]}...({len(self.text)} characters)"


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: tuple[str, ...] = ()


def check_message(index: int, value: bytes | None, max_bytes: int | None = None) -> DeadLetter | None:
    """Why this value cannot become a row of schema.ARROW_SCHEMA, or None when it can."""
    try:
        _check(_decode(value, settings.max_message_bytes() if max_bytes is None else max_bytes), value)
    except _Invalid as bad:
        return DeadLetter(index, str(bad), bad.field)
    except Exception as err:  # noqa: BLE001 - a rule's own bug must not stop the consumer
        return DeadLetter(index, unexpected(err))
    return None


def unexpected(err: BaseException) -> str:
    """The reason for a message that made something raise that nothing here foresaw."""
    text = str(err).splitlines()[0][:200] if str(err) else ""
    return f"unparseable: {type(err).__name__}: {text}"


def too_deep(value: bytes) -> bool:
    """Whether arrays and objects in `value` nest more than MAX_DEPTH levels."""
    if value.count(b"{") + value.count(b"[") <= MAX_DEPTH:
        return False
    return nesting_depth(value) > MAX_DEPTH


def _decode(value: bytes | None, max_bytes: int) -> _Object:
    if value is None:
        raise _Invalid("empty_message", "the message has no value")
    if len(value) > max_bytes:
        raise _Invalid("oversized", f"{len(value)} bytes, more than REDSET_MAX_MESSAGE_BYTES={max_bytes}")
    if not value.strip():
        raise _Invalid("empty_message", "the message has no value")
    if too_deep(value):
        raise _Invalid("too_deep", f"arrays and objects nest {nesting_depth(value)} levels, more than {MAX_DEPTH}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Invalid("not_utf8", f"byte 0x{value[err.start]:02x} at position {err.start} is not UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constants, parse_int=_int,
                         parse_float=_float)
    except json.JSONDecodeError as err:
        raise _Invalid("bad_json", f"{err.msg} at character {err.pos}") from None
    if not isinstance(obj, dict):
        raise _Invalid("not_object", f"expected a JSON object, got {_json_type(obj)}")
    return obj


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        obj.duplicates = tuple(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    return obj


def _int(text: str) -> int | _Huge:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _Huge(text, "an integer")


def _float(text: str) -> float | _Huge:
    number = float(text)
    return number if math.isfinite(number) else _Huge(text, "a number")


def _no_constants(name: str) -> None:
    raise _Invalid("bad_json", f"{name} is not valid JSON")


def _check(obj: _Object, raw: bytes | None) -> None:
    # Arrow refuses a column given twice; unknown fields may repeat, they are ignored anyway.
    for key in obj.duplicates:
        if key in schema.BY_NAME:
            raise _Invalid("duplicate_field", f"field '{key}' appears twice", key)
    for column in schema.COLUMNS:
        name = column.name
        if name not in obj:
            if column.required:
                raise _Invalid("missing_field", f"required field '{name}' is missing", name)
            continue
        value = obj[name]
        if value is not None:
            _check_type(name, column.type, value)
        if column.required and (problem := _required(name, value)):
            raise _Invalid(*problem, name)
    if raw is not None and b"\\u" in raw and not _encodable(obj):
        raise _Invalid("bad_unicode", "a lone surrogate escape (\\ud800-\\udfff) in an unknown field or key")


def required_problem(row: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, field) for the first required field of a typed row that is null or blank."""
    for name in schema.REQUIRED:
        if problem := _required(name, row.get(name)):
            return ": ".join(problem), name
    return None


def _required(name: str, value: Any) -> tuple[str, str] | None:
    if value is None:
        return "null_field", f"required field '{name}' is null"
    if isinstance(value, str) and not value.strip():  # the same whitespace as utf8_trim_whitespace
        return "empty_field", f"required field '{name}' is empty"
    return None


def required_violations(table: pa.Table) -> np.ndarray:
    """Row numbers of a typed table where `_required` refuses a value: null, or a blank string."""
    bad = pa.array(np.zeros(table.num_rows, dtype=bool))
    for name in schema.REQUIRED:
        column = table.column(name)
        bad = pc.or_kleene(bad, pc.is_null(column))
        if pa.types.is_string(column.type):
            bad = pc.or_kleene(bad, pc.equal(pc.utf8_trim_whitespace(column), ""))
    return np.flatnonzero(bad.to_numpy(zero_copy_only=False))


def typed_suspects(table: pa.Table) -> np.ndarray:
    """Rows of a typed table whose message the rules refuse though Arrow typed it: a required
    field null or blank (Arrow reads a missing field as null), a float that is not finite (a
    400-digit integer is inf to Arrow), a timestamp outside the years 1-9999."""
    rows = [required_violations(table)]
    for name in _FLOATS:
        finite = pc.is_finite(table.column(name))
        if pc.all(finite).as_py() is False:
            rows.append(np.flatnonzero(pc.invert(finite).fill_null(False).to_numpy(zero_copy_only=False)))
    for name in _TIMESTAMPS:
        micros = table.column(name).cast(pa.int64())
        low, high = pc.min_max(micros).values()
        if low.is_valid and (low.as_py() < _EARLIEST_US or high.as_py() > _LATEST_US):
            outside = pc.or_(pc.less(micros, _EARLIEST_US), pc.greater(micros, _LATEST_US)).fill_null(False)
            rows.append(np.flatnonzero(outside.to_numpy(zero_copy_only=False)))
    return rows[0] if len(rows) == 1 else np.unique(np.concatenate(rows))


def _check_type(name: str, type_: pa.DataType, value: Any) -> None:
    """Mirror of what Arrow's JSON reader accepts for a column of this type."""
    kind = _json_type(value)
    if pa.types.is_integer(type_):
        if kind != "an integer":
            raise _Invalid("wrong_type", f"field '{name}' expected an integer, got {kind}", name)
        if isinstance(value, _Huge) or not INT64_MIN <= value <= INT64_MAX:
            raise _Invalid("out_of_range", f"field '{name}' value {_short(value)} does not fit int64", name)
    elif pa.types.is_floating(type_):
        if kind not in ("an integer", "a number"):
            raise _Invalid("wrong_type", f"field '{name}' expected a number, got {kind}", name)
        if not math.isfinite(_as_float(value)):
            raise _Invalid("out_of_range", f"field '{name}' value {_short(value)} does not fit float64", name)
    elif pa.types.is_boolean(type_):
        if kind != "a boolean":
            raise _Invalid("wrong_type", f"field '{name}' expected true or false, got {kind}", name)
    elif pa.types.is_timestamp(type_):
        if kind != "a string":
            raise _Invalid("wrong_type", f"field '{name}' expected an ISO-8601 timestamp string, got {kind}", name)
        if not _is_timestamp(value):
            raise _Invalid("bad_timestamp", f"field '{name}' is not a timestamp: {_short(value)}", name)
    elif pa.types.is_string(type_):
        if kind != "a string":
            raise _Invalid("wrong_type", f"field '{name}' expected a string, got {kind}", name)
        if not _encodable(value):
            raise _Invalid("bad_unicode", f"field '{name}' holds a lone surrogate escape (\\ud800-\\udfff)", name)


def _as_float(value: int | float | _Huge) -> float:
    try:
        return float(value.text if isinstance(value, _Huge) else value)
    except OverflowError:  # an int beyond float64
        return math.inf


def _short(value: Any) -> str:
    text = str(value) if isinstance(value, _Huge) else repr(value)
    return text if len(text) <= 40 else f"{text[:40]}...({len(text)} characters)"


def _encodable(obj: Any) -> bool:
    """Whether it has a UTF-8 form: a JSON string escape can name a lone surrogate, which has none."""
    try:
        (obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, default=str)).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_timestamp(text: str) -> bool:
    if not _TIMESTAMP_RE.fullmatch(text):
        return False
    try:
        moment = datetime.fromisoformat(text)  # the calendar: no month 13, no hour 25, no year 0
        if moment.tzinfo is not None:
            moment.astimezone(UTC)  # in UTC it must still fall in years 1-9999
    except (ValueError, OverflowError):
        return False
    return True


def _json_type(value: Any) -> str:
    if isinstance(value, _Huge):
        return value.kind
    return next((name for type_, name in _JSON_TYPES if isinstance(value, type_)), "an object")


_JSON_TYPES = ((type(None), "null"), (bool, "a boolean"), (int, "an integer"), (float, "a number"),
               (str, "a string"), (list, "an array"))  # fmt: skip; bool before int: True is an int too
