"""Arrow's JSON reader with the schema: newline-joined message values -> a typed table, and
Arrow's own words about a single message it refuses (parse.py's bulk path and its last word)."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.json as pj

from pipeline_assets import schema
from pipeline_assets.raw.message_rules import DeadLetter, unexpected

# Timestamps are read as strings and cast afterwards: the same ISO-8601 parser, many times
# faster than the JSON reader's own timestamp conversion.
_TIMESTAMPS = tuple(f.name for f in schema.ARROW_SCHEMA if pa.types.is_timestamp(f.type))
_READ_SCHEMA = pa.schema([f.with_type(pa.string()) if f.name in _TIMESTAMPS else f for f in schema.ARROW_SCHEMA])
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=_READ_SCHEMA, unexpected_field_behavior="ignore")
# To try one field alone, the others may be absent.
_ONE_FIELD = pj.ParseOptions(
    explicit_schema=pa.schema([f.with_nullable(True) for f in _READ_SCHEMA]), unexpected_field_behavior="ignore"
)
# Bigger blocks than Arrow's 1 MiB default: fewer, larger parallel parse tasks per chunk. A block
# must hold the longest message, so a longer one gets a bigger block.
_BLOCK_BYTES = 4 << 20
_ARROW_COLUMN_RE = re.compile(r"Column\(/([^)]*)\)")


def read(buffer: bytes, longest: int, parse_options: pj.ParseOptions = _PARSE_OPTIONS) -> pa.Table:
    """The values in `buffer` (joined by newlines, none longer than `longest` bytes), typed.
    Raises what Arrow raises."""
    options = pj.ReadOptions(block_size=max(_BLOCK_BYTES, longest + 2), use_threads=True)
    return _cast_timestamps(pj.read_json(pa.py_buffer(buffer), read_options=options, parse_options=parse_options))


def _cast_timestamps(table: pa.Table) -> pa.Table:
    """The timestamp columns from ISO-8601 strings; a zone offset is converted to UTC."""
    for name in _TIMESTAMPS:
        typed = schema.utc_timestamps(table.column(name))
        table = table.set_column(table.schema.get_field_index(name), schema.ARROW_SCHEMA.field(name), typed)
    return table


def verdict(index: int, value: bytes) -> DeadLetter:
    """Arrow rejects a message the checks let through: keep Arrow's words, find the field."""
    try:
        read(value.strip(), len(value))
        return DeadLetter(index, "unparseable: Arrow reads it alone but not in its batch")
    except pa.ArrowInvalid as err:
        message = str(err).splitlines()[0][:300]
    except Exception as err:  # noqa: BLE001 - ArrowNotImplementedError, MemoryError, ...
        return DeadLetter(index, unexpected(err))
    return DeadLetter(index, f"unparseable: {message}", _guess_field(value, message))


def _guess_field(value: bytes, message: str) -> str | None:
    named = _ARROW_COLUMN_RE.search(message)
    if named and named.group(1):
        return named.group(1)
    try:  # try each field alone to see which one Arrow refuses
        obj = json.loads(value)  # the message passed the rules: not too deep for json
        for name, item in obj.items():
            if name in schema.BY_NAME:
                try:
                    read(json.dumps({name: item}).encode(), len(value), _ONE_FIELD)
                except pa.ArrowInvalid:
                    return name
    except Exception:  # noqa: BLE001 - only a guess
        pass
    return None
