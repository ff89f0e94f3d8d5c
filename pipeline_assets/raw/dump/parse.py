"""Kafka message values (JSON bytes) -> a typed Arrow table plus dead letters.

Which rule lives where, decided once for the whole pipeline:

    Raw dump (this module, with the one-message rules in message_rules.py): only what cannot be
    parsed or typed. No message can stop it: whatever the bytes, size, nesting or numbers, each
    one becomes a row or a dead letter. A message goes to the dead letters when it is
      - empty_message    no value at all (a tombstone or zero bytes)
      - oversized        more bytes than REDSET_MAX_MESSAGE_BYTES (default 1 MiB)
      - too_deep         arrays and objects nested more than message_rules.MAX_DEPTH (64) levels
      - not_utf8         its bytes are not UTF-8
      - bad_json         not valid JSON (incl. two objects in one message, NaN and Infinity)
      - not_object       valid JSON but not an object (array, number, string, ...)
      - duplicate_field  an object that names the same field of the schema twice
      - missing_field    a required field (schema.REQUIRED) is absent
      - null_field       a required field is null
      - empty_field      a required string field is "" or only whitespace
      - wrong_type       a field has the wrong JSON type for its column (string in an int
                         field, 1.5 in an int field, number in a bool field, ...)
      - out_of_range     a number that does not fit its column: an integer beyond int64 (even
                         one of 5000 digits), a number beyond float64 such as 1e400
      - bad_timestamp    a timestamp string Arrow's ISO-8601 parser rejects, or one outside
                         the years 1-9999 (after conversion to UTC)
      - bad_unicode      a string escape that names a lone surrogate ("\\ud800"): no UTF-8 form
      - unparseable      Arrow rejects the message for a reason the checks above missed, or
                         something raised that nothing foresaw ("unparseable: <Exception>: ...")
    Fields that are not in schema.COLUMNS are ignored, not rejected (they may even repeat).

    dbt clean step (dbt_project, `quarantine_queries`): everything semantic about a row that
    typed fine: null_key, negative durations, arrival outside the data's span or in the
    future, unknown query_type or deployment, was_cached without cache_source_query_id, values
    outside their plausible bounds (dbt var plausible_bounds), and duplicates (the same query delivered twice, or the same Kafka offset re-delivered after
    a crash).

Every dead letter's reason starts with its kind and names the field when there is one, e.g.
"wrong_type: field 'instance_id' expected an integer, got a string".

One source of truth: what a valid message is lives in message_rules.py (`check_message`, and
`typed_suspects` for what Arrow types but the rules refuse). Arrow's bulk read is only the fast
path: screens keep from it what it would take wrongly (size, nesting, bare NaN/Infinity before
the read; typed_suspects after), and tests/test_raw_parse_properties.py pins its verdicts to the
rules both ways, but for one known gap: Arrow refuses 1e400 even in a field it ignores.

Speed: a healthy chunk is parsed in one call to Arrow's JSON reader over the newline-joined
values with the explicit schema, after screens that cost a few numpy or memchr passes over the
bytes. Only a chunk that fails is looked at message by message, to find the bad ones and say
why; the good ones are then parsed in bulk again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import pyarrow as pa

from pipeline_assets import schema, settings
from pipeline_assets.raw.dump import arrow_json
from pipeline_assets.raw.message_rules import MAX_DEPTH, DeadLetter, check_message, too_deep, typed_suspects, unexpected

__all__ = ["DeadLetter", "Parsed", "check_message", "parse_values"]


@dataclass
class Parsed:
    """Result of parsing one batch of values."""

    table: pa.Table  # schema.ARROW_SCHEMA, one row per good message, in batch order
    good: np.ndarray  # batch positions of the rows of `table` (int64)
    dead: list[DeadLetter] = dataclass_field(default_factory=list)


def parse_values(values: Sequence[bytes | None], max_bytes: int | None = None) -> Parsed:
    """Parse JSON message values into rows of schema.ARROW_SCHEMA; the rest become dead letters.

    Never raises: a message that makes anything fail unforeseen is a dead letter saying what.
    """
    limit = settings.max_message_bytes() if max_bytes is None else max_bytes
    try:
        return _parse(values, limit)
    except Exception:  # noqa: BLE001 - a bug, or Arrow failing oddly: judge each message alone
        return _one_by_one(values, limit)


def _parse(values: Sequence[bytes | None], limit: int) -> Parsed:
    everyone = np.arange(len(values), dtype=np.int64)
    if not values:
        return Parsed(schema.ARROW_SCHEMA.empty_table(), everyone)
    table = _read_bulk(values, limit)
    if table is None:
        # Something in the chunk is bad: judge each message, then parse the good ones in bulk.
        dead = [d for i, v in enumerate(values) if (d := check_message(i, v, limit)) is not None]
        return _read_good(values, _drop(everyone, dead), dead, limit)
    return _without_suspects(table, everyone, values, [], limit)


def _one_by_one(values: Sequence[bytes | None], limit: int) -> Parsed:
    """The last resort: every message parsed alone, so one that breaks the bulk path costs only itself."""
    tables, good, dead = [], [], []
    for i, value in enumerate(values):
        try:
            one = _parse([value], limit)
        except Exception as err:  # noqa: BLE001
            dead.append(DeadLetter(i, unexpected(err)))
            continue
        tables.append(one.table)
        good += [i] * one.table.num_rows
        dead += [DeadLetter(i, d.reason, d.field) for d in one.dead]
    table = pa.concat_tables(tables) if tables else schema.ARROW_SCHEMA.empty_table()
    return Parsed(table, np.array(good, dtype=np.int64), dead)


def _without_suspects(
    table: pa.Table, good: np.ndarray, values: Sequence[bytes | None], dead: list[DeadLetter], limit: int
) -> Parsed:
    """Drop the rows Arrow typed but the rules refuse; the message check says why."""
    suspects = typed_suspects(table)
    if suspects.size == 0:
        return Parsed(_typed(table), good, dead)
    dead += [check_message(int(good[i]), values[good[i]], limit) or _unexplained(int(good[i])) for i in suspects]
    dead.sort(key=lambda d: d.index)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[suspects] = False
    return Parsed(_typed(table.filter(pa.array(keep))), good[keep], dead)


def _read_bulk(values: Sequence[bytes | None], limit: int | None) -> pa.Table | None:
    """One Arrow read of the whole batch, or None when any message spoils it.

    The checks make sure that row i of the result is message i: every message is one
    non-empty object ("{...}", so it gives Arrow at least one row or an error) and the row
    count must match (so none gave two). With a `limit`, the screens run first; without, the
    values already passed check_message one by one.
    """
    if None in values:
        return None
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    if lengths.min() == 0 or (limit is not None and lengths.max() > limit):
        return None
    buffer = b"\n".join(values)  # type: ignore[arg-type]
    firsts = _framed_as_objects(lengths, buffer)
    if firsts is None or (limit is not None and not _screened(values, buffer, firsts)):  # type: ignore[arg-type]
        return None
    try:
        if not buffer.isascii():
            buffer.decode("utf-8")  # Arrow does not check UTF-8 inside strings
        table = arrow_json.read(buffer, int(lengths.max()))
        return table if table.num_rows == len(values) else None
    except Exception:  # noqa: BLE001 - ArrowInvalid mostly; whatever it is, judge one by one
        return None


def _framed_as_objects(lengths: np.ndarray, buffer: bytes) -> np.ndarray | None:
    """Where each value starts in `buffer`, if every value starts with "{" and ends with "}".

    Looked up in `buffer` (the values joined by newlines) with numpy, not value by value in
    Python: the profile showed that loop holding the GIL for a sixth of the worker's time. A
    newline inside a value needs no check: to the JSON parser it is whitespace, and a split
    object fails to parse.
    """
    firsts = np.zeros(lengths.size, dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=firsts[1:])
    data = np.frombuffer(buffer, dtype=np.uint8)
    if (data[firsts] == ord("{")).all() and (data[firsts + lengths - 1] == ord("}")).all():
        return firsts
    return None


def _screened(values: Sequence[bytes], buffer: bytes, firsts: np.ndarray) -> bool:
    """Nothing nests too deep and no NaN or Infinity stands bare: Arrow takes both, the rules
    do not (json.loads would recurse). memchr finds "[", "N" and "I" in a blink; Redset
    messages have none, and one "{" each."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    opening = b"{[" if buffer.find(b"[") != -1 else b"{"
    # Every value starts with "{", so none holds more than the total less one per other value.
    if _count(data, opening) - (len(values) - 1) > MAX_DEPTH:
        per_value = np.add.reduceat(np.isin(data, np.frombuffer(opening, np.uint8)), firsts, dtype=np.int64)
        if any(too_deep(values[i]) for i in np.flatnonzero(per_value > MAX_DEPTH)):
            return False
    if buffer.find(b"N") != -1 or buffer.find(b"I") != -1:
        return b"NaN" not in buffer and b"Inf" not in buffer
    return True


def _count(data: np.ndarray, chars: bytes, step: int = 1 << 18) -> int:
    """How many bytes of `data` are one of `chars`; in cache-sized slices (a third faster)."""
    hits = np.empty(min(step, data.size), dtype=bool)
    scratch = np.empty_like(hits)
    total = 0
    for start in range(0, data.size, step):
        part = data[start : start + step]
        found, spare = hits[: part.size], scratch[: part.size]
        np.equal(part, chars[0], out=found)
        for char in chars[1:]:
            found |= np.equal(part, char, out=spare)
        total += int(np.count_nonzero(found))
    return total


def _typed(table: pa.Table) -> pa.Table:
    """The schema's exact fields (incl. not-null flags) once no required field is null."""
    return pa.Table.from_arrays(table.columns, schema=schema.ARROW_SCHEMA)


def _read_good(values: Sequence[bytes | None], good: np.ndarray, dead: list[DeadLetter], limit: int) -> Parsed:
    """Bulk-read the messages the checks passed; if Arrow still disagrees, bisect to find out."""
    tables: list[pa.Table] = []
    kept: list[np.ndarray] = []
    pending = [good]
    while pending:
        part = pending.pop()
        if part.size == 0:
            continue
        table = _read_bulk([values[i].strip() for i in part], None)  # type: ignore[union-attr]
        if table is not None:
            tables.append(table)
            kept.append(part)
        elif part.size == 1:
            dead.append(arrow_json.verdict(int(part[0]), values[part[0]]))  # type: ignore[arg-type]
        else:
            half = part.size // 2
            pending += [part[half:], part[:half]]  # pop() takes the first half next: order kept
    dead.sort(key=lambda d: d.index)
    if not tables:
        return Parsed(schema.ARROW_SCHEMA.empty_table(), np.empty(0, dtype=np.int64), dead)
    return _without_suspects(pa.concat_tables(tables), np.concatenate(kept), values, dead, limit)


def _drop(indices: np.ndarray, dead: list[DeadLetter]) -> np.ndarray:
    if not dead:
        return indices
    keep = np.ones(indices.size, dtype=bool)
    keep[[d.index for d in dead]] = False
    return indices[keep]


def _unexplained(index: int) -> DeadLetter:
    # typed_suspects flagged a row that check_message takes: the screen and the rules disagree
    # (the property tests look for this). Kept as a dead letter so that a row is never lost.
    return DeadLetter(index, "unparseable: Arrow typed a null/blank required field, a non-finite number or a "
                      "timestamp outside years 1-9999, which the message check did not explain")
