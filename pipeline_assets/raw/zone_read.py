"""Reading the raw zone back: every published part file, temporary files ignored; on disk or S3."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_assets import schema
from pipeline_assets.storage import filesystem


def read_raw_zone(root: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """Every published row of a raw zone, a folder or an s3:// URL (tests and checks)."""
    fs, files = filesystem.published(root, f"{schema.RAW_PARTITION_COLUMN}=*/*.parquet")
    if not files:
        return schema.RAW_SCHEMA.empty_table().select(columns or schema.RAW_SCHEMA.names)
    return pa.concat_tables(pq.read_table(f, columns=columns, schema=schema.RAW_SCHEMA, filesystem=fs) for f in files)
