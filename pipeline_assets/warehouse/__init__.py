"""Everything about the warehouse: the dbt assets and translator, daily partitions, build windows,
DuckDB limits, the writer lock, the read-only resource and the raw/offset checks. May import: spark/,
runtime/ and the shared modules."""
