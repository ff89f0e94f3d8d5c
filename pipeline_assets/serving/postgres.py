"""Postgres as a second serving target: each publish also loads the served tables into a schema.

With REDSET_SERVING_POSTGRES_URL (a libpq URL) set, publish() hands this module the Parquet files
it has just written, and they go into REDSET_SERVING_POSTGRES_SCHEMA (default `redset`) with COPY
through psycopg, all tables in ONE transaction: DELETE every row, COPY the new ones, COMMIT. That
is plain MVCC: one snapshot sees the old set or the new one, never a mix, and never waits on the
load; no lock order to deadlock on, as a DROP/RENAME swap would have. A snapshot is one statement
at READ COMMITTED (Postgres's default: a reader's next statement may see the next publication)
and the whole transaction at REPEATABLE READ, which a reader of several tables needs. A
table whose columns changed (a new dbt release) is dropped and created again inside the same
transaction. `_published` holds one row: the publication those tables belong to.

The Parquet snapshot stays the source of truth: a failed load rolls back (Postgres keeps the
previous set), is logged as one line naming the table and the URL without its password, and is
recorded in the manifest; the local publish is not undone.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

_logger = logging.getLogger(__name__)
PUBLISHED = "_published"
BATCH_ROWS = 50_000

# DuckDB's Parquet types as Postgres columns; anything else (lists, structs) goes over as text.
PG_TYPES = {
    "BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint", "INTEGER": "integer",
    "BIGINT": "bigint", "UTINYINT": "smallint", "USMALLINT": "integer", "UINTEGER": "bigint",
    "UBIGINT": "numeric(20)", "FLOAT": "real", "DOUBLE": "double precision", "VARCHAR": "text",
    "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval", "UUID": "uuid", "BLOB": "bytea",
}  # fmt: skip


def url() -> str | None:
    """REDSET_SERVING_POSTGRES_URL: where publish() also loads the served tables; unset: nowhere."""
    return os.environ.get("REDSET_SERVING_POSTGRES_URL", "").strip() or None


def schema() -> str:
    value = os.environ.get("REDSET_SERVING_POSTGRES_SCHEMA", "").strip() or "redset"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"REDSET_SERVING_POSTGRES_SCHEMA={value!r}: use letters, digits and _ (not first a digit)")
    return value


def redact(conninfo: str) -> str:
    """The URL as it may be printed: user, host, port and database, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(conninfo)
    except Exception:  # noqa: BLE001  (libpq's parse error may quote the secret)
        return "postgresql://<unparseable URL>"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


@dataclass
class PostgresLoad:
    """What one load into Postgres did: rows per table, or the one line saying why it failed."""

    target: str  # the redacted URL and schema
    rows: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def manifest(self) -> dict[str, object]:
        return {"target": self.target, "rows": self.rows, "error": self.error}


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> list[tuple[str, str]]:
    """(name, Postgres type) of a Parquet file's columns."""
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{source}')").fetchall()
    return [(name, PG_TYPES.get(dtype, "numeric" if dtype.startswith("DECIMAL") else "text")) for name, dtype, *_ in described]


def _ensure_table(cur, schema_name: str, table: str, columns: list[tuple[str, str]]) -> None:
    """The table with exactly these columns; another shape is replaced (inside the transaction)."""
    have = cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [f'"{schema_name}"."{table}"'],
    ).fetchall()
    want = [(n, t) for n, t in columns]
    if have and [(n, _normal(t)) for n, t in have] == [(n, _normal(t)) for n, t in want]:
        cur.execute(f'DELETE FROM "{schema_name}"."{table}"')
        return
    cur.execute(f'DROP TABLE IF EXISTS "{schema_name}"."{table}"')
    cols = ", ".join(f'"{n}" {t}' for n, t in columns)
    cur.execute(f'CREATE TABLE "{schema_name}"."{table}" ({cols})')


def _normal(pg_type: str) -> str:
    return {"timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
            "time without time zone": "time", "numeric(20,0)": "numeric(20)"}.get(pg_type, pg_type)  # fmt: skip


def _copy(cur, con: duckdb.DuckDBPyConnection, source: str, schema_name: str, table: str, columns: list) -> int:
    names = ", ".join(f'"{n}"' for n, _ in columns)
    select = ", ".join(f'"{n}"' if t != "text" else f'CAST("{n}" AS VARCHAR)' for n, t in columns)
    reader = con.sql(f"SELECT {select} FROM read_parquet('{source}')").to_arrow_reader(BATCH_ROWS)
    rows = 0
    with cur.copy(f'COPY "{schema_name}"."{table}" ({names}) FROM STDIN') as copy:
        for batch in reader:
            for row in zip(*(c.to_pylist() for c in batch.columns)):
                copy.write_row(row)
            rows += batch.num_rows
    return rows


def load(files: dict[str, Path], published_at: str, conninfo: str, schema_name: str | None = None) -> PostgresLoad:
    """Load every Parquet file (table name -> file) into the schema in one transaction.

    Never raises for a Postgres problem: the result's `error` says what failed (no password).
    """
    try:
        import psycopg
    except ImportError:
        hint = "REDSET_SERVING_POSTGRES_URL is set but psycopg is not installed: pip install -e '.[postgres]'"
        return _failed(PostgresLoad(target=""), hint)
    try:
        schema_name = schema_name or schema()
    except ValueError as exc:
        return _failed(PostgresLoad(target=redact(conninfo)), f"Postgres serving load not done: {exc}")
    result = PostgresLoad(target=f"{redact(conninfo)} schema {schema_name}")
    table = "(connecting)"
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as pg, duckdb.connect() as con, pg.cursor() as cur:
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"')
            for table, path in files.items():
                source = str(path).replace("'", "''")
                columns = _columns(con, source)
                _ensure_table(cur, schema_name, table, columns)
                result.rows[table] = _copy(cur, con, source, schema_name, table, columns)
            table = PUBLISHED
            cur.execute(f'CREATE TABLE IF NOT EXISTS "{schema_name}"."{PUBLISHED}" (published_at timestamptz, tables jsonb)')
            cur.execute(f'DELETE FROM "{schema_name}"."{PUBLISHED}"')
            cur.execute(f'INSERT INTO "{schema_name}"."{PUBLISHED}" VALUES (%s, %s)', [published_at, json.dumps(result.rows)])
        # Leaving `with psycopg.connect` committed the transaction (or rolled it back on an error).
    except (psycopg.Error, duckdb.Error, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        password = _password(conninfo)
        if password is False:  # libpq's parse error may quote the URL, secret and all
            message = "REDSET_SERVING_POSTGRES_URL is not a valid libpq URL"
        elif password:
            message = message.replace(password, "***")
        result.rows = {}
        return _failed(result, f"Postgres serving load failed at table {table} into {result.target}: {message}")
    return result


def _failed(result: PostgresLoad, error: str) -> PostgresLoad:
    result.error = error
    _logger.warning(error)
    return result


def _password(conninfo: str) -> str | bool | None:
    """The URL's password; False when libpq cannot parse the URL."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(conninfo).get("password") or None
    except Exception:  # noqa: BLE001
        return False
