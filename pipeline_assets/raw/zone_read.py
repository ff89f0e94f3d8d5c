"""Reading the raw zone back: every published part file, temporary files ignored."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_assets import schema


def read_raw_zone(root: Path, columns: list[str] | None = None) -> pa.Table:
    """Every published row of a raw zone (tests and checks); temporary files are ignored."""
    files = sorted(Path(root).glob(f"{schema.RAW_PARTITION_COLUMN}=*/*.parquet"))
    files = [f for f in files if not f.name.startswith((".", "_"))]
    if not files:
        return schema.RAW_SCHEMA.empty_table().select(columns or schema.RAW_SCHEMA.names)
    return pa.concat_tables(pq.read_table(f, columns=columns, schema=schema.RAW_SCHEMA) for f in files)
