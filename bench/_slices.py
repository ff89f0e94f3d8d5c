"""Generated rows in slices of bounded size, so a bench of 50M rows never holds them all.

The generator builds its whole table in memory (about 0.4 GB per million rows), so a big bench
generates `rows` as slices of at most SLICE_ROWS rows. Slice k is `generator.generate` of its
size with seed `seed + k`: the slices are independent draws, each with its own instances'
characteristics (load, type mix, users, tables; slice 0's instance ids are those of one draw
of `rows`), which is fine for a scale bench, though it is not one fleet's log. Rows within a
slice keep the generator's arrival order; across slices arrivals start over, which the pipeline
does not mind (the raw dump partitions by arrival date, the dbt models key by query).

Ids that must stay unique across slices are made disjoint: query_id and cache_source_query_id
get k * QUERY_ID_STRIDE added, so (deployment, instance_id, query_id), the key of the row-level
marts, is unique over every slice. bench/transform.py's appended day adds 10**12, above every
slice's ids. Slice 0 is exactly `generator.generate(rows, seed, ...)` when `rows` fits one slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

SLICE_ROWS = 5_000_000
# A slice's own query ids stay far below this (bases < 5M plus ~3.3 per row of an instance).
QUERY_ID_STRIDE = 10**10
# The appended day's ids start at 10**12 (bench/transform.py APPEND_QUERY_ID_OFFSET).
MAX_SLICES = 100


def slice_sizes(rows: int, slice_rows: int = SLICE_ROWS) -> list[int]:
    """Sizes of the slices of `rows`: as many full slices as fit, then the rest."""
    if rows < 0 or slice_rows < 1:
        raise ValueError(f"rows must be >= 0 and slice_rows >= 1, not {rows} and {slice_rows}")
    sizes = [slice_rows] * (rows // slice_rows) + ([rows % slice_rows] if rows % slice_rows else [])
    if len(sizes) > MAX_SLICES:
        raise ValueError(f"{rows:,} rows in slices of {slice_rows:,} make {len(sizes)} slices; at most {MAX_SLICES} "
                         "keep query ids below the appended day's (raise slice_rows)")  # fmt: skip
    return sizes


def generate_slice(k: int, rows: int, seed: int, start: date, days: int, slice_rows: int = SLICE_ROWS):
    """Slice k of `rows` generated rows (a pyarrow Table), its ids moved to slice k's range."""
    import pyarrow.compute as pc

    from pipeline_assets.source import generator

    size = slice_sizes(rows, slice_rows)[k]
    # Every slice draws as many instances as one table of `rows` would have.
    table = generator.generate(size, seed=seed + k, start=start, days=days,
                               instances=generator.default_instances(rows))  # fmt: skip
    top = pc.max(table.column("query_id")).as_py() or 0
    if top >= QUERY_ID_STRIDE:
        raise ValueError(f"slice {k} has query id {top} >= QUERY_ID_STRIDE {QUERY_ID_STRIDE}: its ids would overlap the next slice's")
    if k == 0:
        return table
    offset = k * QUERY_ID_STRIDE
    for name in ("query_id", "cache_source_query_id"):  # nulls stay null
        i = table.schema.get_field_index(name)  # the field itself keeps the schema's NOT NULL
        table = table.set_column(i, table.schema.field(i), pc.add(table.column(name), offset))
    return table


def generate_slices(rows: int, seed: int, start: date, days: int, slice_rows: int = SLICE_ROWS) -> Iterator:
    """Every slice of `rows` generated rows in turn; together exactly `rows` rows."""
    for k in range(len(slice_sizes(rows, slice_rows))):
        yield generate_slice(k, rows, seed, start, days, slice_rows)
