"""Typing any table (parquet, CSV, NDJSON) to schema.ARROW_SCHEMA.

conform() is the one place that turns whatever a file stored (0/1 booleans, int or float
megabytes, timestamps in any unit or zone or as ISO strings) into the schema's types; a zone
offset becomes UTC, as on the Kafka path. The Redset reader and the landing-file ingest use it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline_assets import schema


class SchemaError(ValueError):
    """A source lacks required columns or stores a column in a type we cannot read as Redset's."""


def _kind(type_: pa.DataType) -> str:
    """A coarse family for a column type, which decides how it converts."""
    if pa.types.is_null(type_):
        return "null"
    if pa.types.is_dictionary(type_):
        return _kind(type_.value_type)
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_):
        return "int"
    if pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "float"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return "string"
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        return "time"
    return str(type_)


# Which stored families each target family accepts (values are checked in _convert).
_ACCEPTS: dict[str, set[str]] = {
    "int": {"int", "float", "null"},  # pandas stores nullable ints as float
    "float": {"int", "float", "null"},
    "bool": {"bool", "int", "string", "null"},  # some copies store 0/1
    "string": {"string", "int", "null"},  # a CSV of single table ids reads as int
    "time": {"time", "string", "null"},  # ISO strings from CSV / JSON
}


def _type_problems(types: dict[str, pa.DataType]) -> list[str]:
    """'column (stored, expected)' for each present column whose type cannot be read."""
    problems = []
    for name, stored in types.items():
        column = schema.BY_NAME.get(name)
        if column is None:
            continue
        if _kind(stored) not in _ACCEPTS[_kind(column.type)]:
            problems.append(f"{name} ({stored}, expected {column.type})")
    return problems


def check_columns(
    types: dict[str, pa.DataType], source_name: str, *, deployment_known: bool
) -> None:
    """Raise SchemaError naming `source_name` and every missing or mistyped column."""
    needed = [n for n in schema.REQUIRED if not (n == "deployment" and deployment_known)]
    missing = [n for n in needed if n not in types]
    wrong = _type_problems(types)
    if not (missing or wrong):
        return
    parts = []
    if missing:
        hint = ""
        if "deployment" in missing:
            hint = " (pass deployment= or put 'provisioned'/'serverless' in the path)"
        parts.append("missing required columns: " + ", ".join(missing) + hint)
    if wrong:
        parts.append("wrong types: " + ", ".join(wrong))
    raise SchemaError(f"{source_name}: " + "; ".join(parts))


def _integral(values: pa.ChunkedArray) -> bool:
    finite = pc.drop_null(values)
    return len(finite) == 0 or pc.all(pc.equal(finite, pc.floor(finite))).as_py()


_TRUE = {"1", "true", "t", "yes"}
_FALSE = {"0", "false", "f", "no"}


def _convert(values: pa.ChunkedArray, target: pa.DataType, name: str, source_name: str) -> pa.ChunkedArray:
    """One column to the schema's type, or a SchemaError saying which values do not fit."""
    stored = _kind(values.type)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_floating(values.type) and values.null_count < len(values):
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)  # pandas' NULL
    if values.type == target:
        return values
    if stored == "null":
        return pa.chunked_array([pa.nulls(len(values), target)])

    def bad(what: str) -> SchemaError:
        return SchemaError(f"{source_name}: wrong values in {name}: {what}")

    wanted = _kind(target)
    if wanted == "bool" and stored == "int":
        distinct = set(pc.unique(pc.drop_null(values)).to_pylist())
        if not distinct <= {0, 1}:
            raise bad(f"expected 0/1 booleans, found {sorted(distinct)[:5]}")
        return pc.not_equal(values, 0)
    if wanted == "bool" and stored == "string":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        distinct = set(pc.unique(pc.drop_null(lowered)).to_pylist())
        if not distinct <= _TRUE | _FALSE:
            raise bad(f"expected true/false, found {sorted(distinct)[:5]}")
        truth = pc.is_in(lowered, value_set=pa.array(sorted(_TRUE)))
        return pc.if_else(pc.is_null(lowered), pa.scalar(None, pa.bool_()), truth)
    if wanted == "int" and stored == "float" and not _integral(values):
        raise bad("expected whole numbers, found fractions")
    safe = True
    if pa.types.is_timestamp(values.type):
        # Keep the UTC wall time (Redset has no zones); drop sub-microsecond digits.
        values = values.cast(pa.timestamp(values.type.unit))
        safe = values.type.unit != "ns"
    try:
        if wanted == "time" and stored == "string":
            return schema.utc_timestamps(values)  # as the Kafka path: "+02:00" or "Z" becomes UTC
        return values.cast(target, safe=safe)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise bad(str(exc)) from exc


def conform(table: pa.Table, source_name: str, deployment: str | None = None) -> pa.Table:
    """`table` typed to schema.ARROW_SCHEMA: columns in schema order, extra columns dropped,
    optional columns the source lacks filled with NULL.

    `deployment` fills the deployment column when the table has none (a real Redset file),
    and its NULLs when it has one. Raises SchemaError naming `source_name` and the
    missing or mistyped columns.
    """
    if deployment is not None and deployment not in schema.DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {schema.DEPLOYMENTS}, not {deployment!r}")
    types = {f.name: f.type for f in table.schema}
    check_columns(types, source_name, deployment_known=deployment is not None)
    arrays = []
    for field in schema.ARROW_SCHEMA:
        if field.name in types:
            arrays.append(_convert(table[field.name], field.type, field.name, source_name))
            if field.name == "deployment" and deployment is not None:
                arrays[-1] = pc.fill_null(arrays[-1], deployment)
        elif field.name == "deployment":
            arrays.append(pa.chunked_array([pa.repeat(pa.scalar(deployment, pa.string()), table.num_rows)]))
        else:
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
    return pa.Table.from_arrays(arrays, schema=schema.ARROW_SCHEMA)
