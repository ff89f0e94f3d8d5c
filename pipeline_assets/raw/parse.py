"""Kafka message values (JSON bytes) -> a typed Arrow table plus dead letters.

Which rule lives where, decided once for the whole pipeline:

    Raw dump (this module): only what cannot be parsed or typed. A message goes to the
    dead letters when it is
      - empty_message    no value at all (a tombstone or zero bytes)
      - not_utf8         its bytes are not UTF-8
      - bad_json         not valid JSON (incl. two objects in one message)
      - not_object       valid JSON but not an object (array, number, string, ...)
      - duplicate_field  an object that names the same field twice
      - missing_field    a required field (schema.REQUIRED) is absent
      - null_field       a required field is null
      - empty_field      a required string field is "" or only whitespace
      - wrong_type       a field has the wrong JSON type for its column (string in an int
                         field, 1.5 in an int field, number in a bool field, ...)
      - out_of_range     an integer that does not fit int64
      - bad_timestamp    a timestamp string Arrow's ISO-8601 parser rejects
      - unparseable      Arrow rejects the message for a reason the checks above missed
    Fields that are not in schema.COLUMNS are ignored, not rejected.

    dbt clean step (dbt_project, `quarantine_queries`): everything semantic about a row that
    typed fine: null_key, negative durations, arrival outside the data's span or in the
    future, unknown query_type or deployment, was_cached without cache_source_query_id, values
    outside their plausible bounds (dbt var plausible_bounds), and duplicates (the same query delivered twice, or the same Kafka offset re-delivered after
    a crash).

Every dead letter's reason starts with its kind and names the field when there is one, e.g.
"wrong_type: field 'instance_id' expected an integer, got a string".

Speed: a healthy chunk is parsed in one call to Arrow's JSON reader over the newline-joined
values with the explicit schema. Only a chunk that fails is looked at message by message, to
find the bad ones and say why; the good ones are then parsed in bulk again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from pipeline_assets import schema

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Timestamps are read as strings and cast afterwards: the same ISO-8601 parser, many times
# faster than the JSON reader's own timestamp conversion.
_TIMESTAMPS = tuple(f.name for f in schema.ARROW_SCHEMA if pa.types.is_timestamp(f.type))
_READ_SCHEMA = pa.schema([f.with_type(pa.string()) if f.name in _TIMESTAMPS else f for f in schema.ARROW_SCHEMA])
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=_READ_SCHEMA, unexpected_field_behavior="ignore")
# Bigger blocks than Arrow's 1 MiB default: fewer, larger parallel parse tasks per chunk.
_READ_OPTIONS = pj.ReadOptions(block_size=4 << 20, use_threads=True)

_REQUIRED_STRINGS = tuple(n for n in schema.REQUIRED if pa.types.is_string(schema.BY_NAME[n].type))
# The shapes Arrow's ISO-8601 timestamp parser accepts (fractions up to microseconds).
_TIMESTAMP_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}([ T]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?"
)
_ARROW_COLUMN_RE = re.compile(r"Column\(/([^)]*)\)")


@dataclass(frozen=True)
class DeadLetter:
    """A message of the batch that could not be parsed or typed."""

    index: int  # position of the message in the batch
    reason: str  # "<kind>: <detail naming the field>"
    field: str | None = None

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass
class Parsed:
    """Result of parsing one batch of values."""

    table: pa.Table  # schema.ARROW_SCHEMA, one row per good message, in batch order
    good: np.ndarray  # batch positions of the rows of `table` (int64)
    dead: list[DeadLetter] = dataclass_field(default_factory=list)


class _Invalid(Exception):
    def __init__(self, kind: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.field = field


def parse_values(values: Sequence[bytes | None]) -> Parsed:
    """Parse JSON message values into rows of schema.ARROW_SCHEMA; the rest become dead letters."""
    everyone = np.arange(len(values), dtype=np.int64)
    if not values:
        return Parsed(schema.ARROW_SCHEMA.empty_table(), everyone)
    table = _read_bulk(values)
    if table is None:
        # Something in the chunk is bad: judge each message, then parse the good ones in bulk.
        dead = [d for i, v in enumerate(values) if (d := check_message(i, v)) is not None]
        return _read_good(values, _drop(everyone, dead), dead)

    # The chunk typed fine, but Arrow reads a missing or null required field as null and
    # accepts "": only those rows need a closer look.
    suspects = required_violations(table)
    if suspects.size == 0:
        return Parsed(_typed(table), everyone)
    dead = [check_message(int(i), values[i]) or _unexplained(int(i)) for i in suspects]
    keep = np.ones(len(values), dtype=bool)
    keep[suspects] = False
    return Parsed(_typed(table.filter(pa.array(keep))), everyone[keep], dead)


def _read_bulk(values: Sequence[bytes | None]) -> pa.Table | None:
    """One Arrow read of the whole batch, or None when any message spoils it.

    The checks make sure that row i of the result is message i: every message is one
    non-empty object ("{...}", so it gives Arrow at least one row or an error) and the row
    count must match (so none gave two).
    """
    if None in values:
        return None
    buffer = b"\n".join(values)  # type: ignore[arg-type]
    if not _framed_as_objects(values, buffer):  # type: ignore[arg-type]
        return None
    try:
        if not buffer.isascii():
            buffer.decode("utf-8")  # Arrow does not check UTF-8 inside strings
        table = pj.read_json(pa.py_buffer(buffer), read_options=_READ_OPTIONS, parse_options=_PARSE_OPTIONS)
        if table.num_rows != len(values):
            return None
        return _cast_timestamps(table)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None


def _framed_as_objects(values: Sequence[bytes], buffer: bytes) -> bool:
    """Whether every value is non-empty, starts with "{" and ends with "}".

    Looked up in `buffer` (the values joined by newlines) with numpy, not value by value in
    Python: the profile showed that loop holding the GIL for a sixth of the worker's time. A
    newline inside a value needs no check: to the JSON parser it is whitespace, and a split
    object fails to parse.
    """
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    if lengths.min() == 0:
        return False
    firsts = np.zeros(len(values), dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=firsts[1:])
    data = np.frombuffer(buffer, dtype=np.uint8)
    return bool((data[firsts] == ord("{")).all() and (data[firsts + lengths - 1] == ord("}")).all())


def _typed(table: pa.Table) -> pa.Table:
    """The schema's exact fields (incl. not-null flags) once no required field is null."""
    return pa.Table.from_arrays(table.columns, schema=schema.ARROW_SCHEMA)


def _cast_timestamps(table: pa.Table) -> pa.Table:
    """The timestamp columns from ISO-8601 strings; a zone offset is converted to UTC."""
    for name in _TIMESTAMPS:
        text = table.column(name)
        try:
            typed = text.cast(schema.TIMESTAMP)
        except pa.ArrowInvalid:  # "...Z" or "+01:00": parse as UTC, keep the wall time
            typed = text.cast(pa.timestamp(schema.TIMESTAMP.unit, "UTC")).cast(schema.TIMESTAMP)
        table = table.set_column(table.schema.get_field_index(name), schema.ARROW_SCHEMA.field(name), typed)
    return table


def _read_good(values: Sequence[bytes | None], good: np.ndarray, dead: list[DeadLetter]) -> Parsed:
    """Bulk-read the messages the checks passed; if Arrow still disagrees, bisect to find out."""
    tables: list[pa.Table] = []
    kept: list[np.ndarray] = []
    pending = [good]
    while pending:
        part = pending.pop()
        if part.size == 0:
            continue
        table = _read_bulk([values[i].strip() for i in part])  # type: ignore[union-attr]
        if table is not None:
            tables.append(table)
            kept.append(part)
        elif part.size == 1:
            dead.append(_arrow_verdict(int(part[0]), values[part[0]]))  # type: ignore[arg-type]
        else:
            half = part.size // 2
            pending += [part[half:], part[:half]]  # pop() takes the first half next: order kept
    dead.sort(key=lambda d: d.index)
    if not tables:
        return Parsed(schema.ARROW_SCHEMA.empty_table(), np.empty(0, dtype=np.int64), dead)
    return Parsed(_typed(pa.concat_tables(tables)), np.concatenate(kept), dead)


def required_violations(table: pa.Table) -> np.ndarray:
    """Row numbers where a required field is null, or a required string field is blank."""
    bad = None
    for name in schema.REQUIRED:
        column = table.column(name)
        hit = pc.is_null(column)
        if name in _REQUIRED_STRINGS:
            hit = pc.or_kleene(hit, pc.equal(pc.utf8_trim_whitespace(column), ""))
        bad = hit if bad is None else pc.or_kleene(bad, hit)
    if bad is None:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(bad.to_numpy(zero_copy_only=False))


def required_problem(row: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, field) for the first required field of a typed row that is null or blank."""
    for name in schema.REQUIRED:
        value = row.get(name)
        if value is None:
            return f"null_field: required field '{name}' is null", name
        if isinstance(value, str) and not value.strip():
            return f"empty_field: required field '{name}' is empty", name
    return None


def _drop(indices: np.ndarray, dead: list[DeadLetter]) -> np.ndarray:
    if not dead:
        return indices
    keep = np.ones(indices.size, dtype=bool)
    keep[[d.index for d in dead]] = False
    return indices[keep]


# --- one message at a time: the slow path that explains what is wrong ---------------------


def check_message(index: int, value: bytes | None) -> DeadLetter | None:
    """Why this value cannot become a row of schema.ARROW_SCHEMA, or None when it can."""
    try:
        _check(_decode(value))
    except _Invalid as bad:
        return DeadLetter(index, str(bad), bad.field)
    return None


def _decode(value: bytes | None) -> dict[str, Any]:
    if value is None or not value.strip():
        raise _Invalid("empty_message", "the message has no value")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Invalid("not_utf8", f"byte 0x{value[err.start]:02x} at position {err.start} is not UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as err:
        raise _Invalid("bad_json", f"{err.msg} at character {err.pos}") from None
    if not isinstance(obj, dict):
        raise _Invalid("not_object", f"expected a JSON object, got {_json_type(obj)}")
    return obj


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Invalid("duplicate_field", f"field '{key}' appears twice", key)
        obj[key] = value
    return obj


def _no_constants(name: str) -> None:
    raise _Invalid("bad_json", f"{name} is not valid JSON")


def _check(obj: dict[str, Any]) -> None:
    for column in schema.COLUMNS:
        name = column.name
        if name not in obj:
            if column.required:
                raise _Invalid("missing_field", f"required field '{name}' is missing", name)
            continue
        value = obj[name]
        if value is None:
            if column.required:
                raise _Invalid("null_field", f"required field '{name}' is null", name)
            continue
        _check_type(name, column.type, value)
        if column.required and isinstance(value, str) and not value.strip():
            raise _Invalid("empty_field", f"required field '{name}' is empty", name)


def _check_type(name: str, type_: pa.DataType, value: Any) -> None:
    """Mirror of what Arrow's JSON reader accepts for a column of this type."""
    kind = _json_type(value)
    if pa.types.is_integer(type_):
        if kind != "an integer":
            raise _Invalid("wrong_type", f"field '{name}' expected an integer, got {kind}", name)
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Invalid("out_of_range", f"field '{name}' value {value} does not fit int64", name)
    elif pa.types.is_floating(type_):
        if kind not in ("an integer", "a number"):
            raise _Invalid("wrong_type", f"field '{name}' expected a number, got {kind}", name)
    elif pa.types.is_boolean(type_):
        if kind != "a boolean":
            raise _Invalid("wrong_type", f"field '{name}' expected true or false, got {kind}", name)
    elif pa.types.is_timestamp(type_):
        if kind != "a string":
            raise _Invalid("wrong_type", f"field '{name}' expected an ISO-8601 timestamp string, got {kind}", name)
        if not _is_timestamp(value):
            raise _Invalid("bad_timestamp", f"field '{name}' is not a timestamp: {value[:40]!r}", name)
    elif pa.types.is_string(type_):
        if kind != "a string":
            raise _Invalid("wrong_type", f"field '{name}' expected a string, got {kind}", name)


def _is_timestamp(text: str) -> bool:
    if not _TIMESTAMP_RE.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)  # the calendar: no month 13, no hour 25
    except ValueError:
        return False
    return True


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _arrow_verdict(index: int, value: bytes) -> DeadLetter:
    """Arrow rejects a message the checks let through: keep Arrow's words, find the field."""
    try:
        _cast_timestamps(pj.read_json(pa.py_buffer(value.strip()), parse_options=_PARSE_OPTIONS))
        message = "Arrow reads it alone but not in its batch"
    except pa.ArrowInvalid as err:
        message = str(err).splitlines()[0]
    return DeadLetter(index, f"unparseable: {message}", _guess_field(value, message))


def _guess_field(value: bytes, message: str) -> str | None:
    named = _ARROW_COLUMN_RE.search(message)
    if named and named.group(1):
        return named.group(1)
    try:  # try each field alone to see which one Arrow refuses
        obj = json.loads(value)
        for name, item in obj.items():
            if name in schema.BY_NAME:
                try:
                    one = pj.read_json(pa.py_buffer(json.dumps({name: item}).encode()), parse_options=_PARSE_OPTIONS)
                    _cast_timestamps(one)
                except pa.ArrowInvalid:
                    return name
    except (ValueError, AttributeError):
        pass
    return None


def _unexplained(index: int) -> DeadLetter:
    # Unreachable when check_message mirrors _required_violations; kept so a row is never lost.
    return DeadLetter(index, "unparseable: a required field is null or empty", None)
