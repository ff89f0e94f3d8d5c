"""Seeded synthetic Redset rows with the shapes the paper and docs/redset-data.md describe.

The generator works in layers, all vectorised with numpy (Python loops run only per instance or
per query template, never per row):

1. instances (instances.py): a few provisioned and/or serverless clusters, each with its own
   load, type mix, users, databases, tables and share of one-off queries;
2. rows (distributions.py): each row gets a query type, an execution-time bucket and a
   scan-size bucket, with the paper's shares for provisioned rows and heavier serverless ones;
3. templates (templates.py): rows of one class spread over a few recurring query templates
   that fix the fingerprint, user, database, tables and rough duration;
4. arrivals (arrivals.py): each instance's hourly load follows its rhythm (steady, scheduled,
   office, bursty); ingest templates run on fixed periods.

Cached rows copy an earlier select of the same instance and point at it. This module assembles
the columns and writes them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline_assets import schema
from pipeline_assets.source import arrivals, distributions, shapes, templates
from pipeline_assets.source.distributions import CACHED, EXEC_EDGES_MS, INGEST_KINDS, KIND, KINDS, SCAN_EDGES_MB
from pipeline_assets.source.instances import Instances, default_instances
from pipeline_assets.source.instances import draw as draw_instances
from pipeline_assets.source.templates import Templates, mix64

__all__ = ["default_instances", "generate", "summary", "write"]

CACHED_EXEC_MS = 1


def generate(
    rows: int,
    seed: int = 42,
    deployment: str = "both",
    start: date = date(2024, 3, 1),
    days: int = 91,
    instances: int | None = None,
) -> pa.Table:
    """`rows` synthetic Redset rows typed to schema.ARROW_SCHEMA, sorted by arrival_timestamp.

    The same arguments always give the same table (and, through write(), the same bytes).
    `instances` overrides the default number of clusters (default_instances(rows)).
    """
    if rows < 0 or days < 1 or seed < 0:
        raise ValueError("rows and seed must be >= 0, days >= 1")
    if instances is not None and not 1 <= instances <= 200 * (2 if deployment == "both" else 1):
        raise ValueError("instances must be 1..200 per deployment, like Redset's instance ids")
    if deployment not in (*schema.DEPLOYMENTS, "both"):
        raise ValueError(f"deployment must be one of {schema.DEPLOYMENTS} or 'both', not {deployment!r}")
    if rows == 0:
        return schema.ARROW_SCHEMA.empty_table()
    rng = np.random.default_rng(seed)
    n_inst = max(1, min(instances or default_instances(rows), rows))
    inst = draw_instances(rng, rows, n_inst, deployment)
    span_us = days * arrivals.US_PER_DAY

    kind, row_inst = distributions.row_kinds(rng, inst.rows)
    cached = kind == CACHED
    base = np.flatnonzero(~cached)
    exec_b, scan_b = distributions.buckets(rng, kind, inst.deployment[row_inst])

    tpl = templates.build(rng, inst, row_inst[base], kind[base], exec_b[base], scan_b[base])
    row_tpl = np.full(rows, -1, np.int64)
    row_tpl[base] = tpl.row_template
    unique = np.zeros(rows, bool)
    repeatable = ~np.isin(kind[base], INGEST_KINDS)
    unique[base] = repeatable & (rng.random(base.size) < inst.unique_share[row_inst[base]])

    curves = arrivals.load_curves(rng, inst.deployment, inst.utc_offset_h, start, days)
    t_us = np.zeros(rows, np.int64)
    t_us[base] = arrivals.arrival_times(rng, curves, row_inst[base], kind[base], tpl.row_template)
    aborted = np.zeros(rows, bool)
    aborted[base] = rng.random(base.size) < inst.abort_rate[row_inst[base]]

    # Cached rows repeat an earlier, successful select of their instance a little later.
    source = np.full(rows, -1, np.int64)
    cached_rows = np.flatnonzero(cached)
    source[cached_rows] = _cache_sources(rng, row_inst, kind, aborted, cached_rows)
    src = source[cached_rows]
    row_tpl[cached_rows] = row_tpl[src]
    unique[cached_rows] = unique[src]
    delay = rng.exponential(20 * 60e6, cached_rows.size).astype(np.int64)
    t_us[cached_rows] = t_us[src] + np.minimum(delay, span_us - 1 - t_us[src])

    order = np.lexsort((np.arange(rows), cached, t_us))
    query_id = _query_ids(rng, row_inst, order, n_inst)

    source_qid = np.where(cached, query_id[np.maximum(source, 0)], 0)
    # One-off queries hash their own row (a cached copy hashes its source's row).
    origin = np.where(cached, source, np.arange(rows))
    fingerprint = np.where(unique, mix64(origin.astype(np.uint64) + mix64(np.uint64(seed))), 0)
    # From here on every row array is in output (arrival) order.
    sorted_rows = _Rows(
        kind=kind[order], inst=row_inst[order], exec_b=exec_b[order], scan_b=scan_b[order],
        tpl=row_tpl[order], unique=unique[order], fingerprint=fingerprint[order],
        t_us=t_us[order] + int(np.datetime64(start, "us").astype(np.int64)), aborted=aborted[order],
        cached=cached[order], query_id=query_id[order], source_query_id=source_qid[order],
        load=curves.at(row_inst, t_us)[order],
    )
    return _assemble(rng, inst, tpl, sorted_rows)


def _cache_sources(
    rng: np.random.Generator, row_inst: np.ndarray, kind: np.ndarray, aborted: np.ndarray, cached_rows: np.ndarray
) -> np.ndarray:
    """For each cached row, a successful select of the same instance whose result it reuses."""
    candidates = np.flatnonzero((kind == KIND["select"]) & ~aborted)
    cand_inst = row_inst[candidates]
    out = np.empty(cached_rows.size, np.int64)
    for i in np.unique(row_inst[cached_rows]):
        mine = row_inst[cached_rows] == i
        pool = candidates[cand_inst == i]
        if pool.size == 0:  # only possible when every select of a tiny instance aborted
            pool = np.flatnonzero((kind == KIND["select"]) & (row_inst == i))
        out[mine] = pool[rng.integers(0, pool.size, mine.sum())]
    return out


def _query_ids(rng: np.random.Generator, row_inst: np.ndarray, order: np.ndarray, n_inst: int) -> np.ndarray:
    """Per-instance query ids, increasing with arrival, with gaps (Redset is a sample)."""
    # int16 keys let numpy use a radix sort (there are at most 400 instances).
    by_inst = order[np.argsort(row_inst[order].astype(np.int16), kind="stable")]
    gaps = rng.geometric(0.3, order.size)
    counts = np.bincount(row_inst, minlength=n_inst)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    running = np.cumsum(gaps)
    start = np.repeat(running[first - 1] * (first > 0), counts)
    bases = rng.integers(1_000, 5_000_000, n_inst)
    query_id = np.empty(order.size, np.int64)
    query_id[by_inst] = np.repeat(bases, counts) + running - start
    return query_id


@dataclass(frozen=True)
class _Rows:
    """Per-row arrays, in output order."""

    kind: np.ndarray
    inst: np.ndarray
    exec_b: np.ndarray
    scan_b: np.ndarray
    tpl: np.ndarray
    unique: np.ndarray
    fingerprint: np.ndarray  # uint64 hash of one-off rows; templates hash the others
    t_us: np.ndarray  # arrival, microseconds since the epoch
    aborted: np.ndarray
    cached: np.ndarray
    query_id: np.ndarray
    source_query_id: np.ndarray  # for cached rows
    load: np.ndarray  # the instance's load in the row's hour (mean 1)


def _within(edges: np.ndarray, bucket: np.ndarray, pos: np.ndarray, low: float) -> np.ndarray:
    """A value inside each row's bucket, at log-scale position `pos` (0..1)."""
    lo = np.maximum(edges[bucket], low)
    hi = edges[bucket + 1]
    return lo * (hi / lo) ** pos


def _assemble(rng: np.random.Generator, inst: Instances, tpl: Templates, r: _Rows) -> pa.Table:
    n = r.kind.size
    cached, tid = r.cached, r.tpl
    other = (r.kind == KIND["other"]) | cached

    # Durations: a template keeps its place in the bucket, with a little noise per run.
    noise = rng.normal(0, 0.08, n)
    exec_pos = np.where(r.unique, rng.random(n), np.clip(tpl.exec_pos[tid] + noise, 0, 1))
    exec_ms = np.clip(
        np.rint(_within(EXEC_EDGES_MS, r.exec_b, exec_pos, 1.0)),
        EXEC_EDGES_MS[r.exec_b] + 1,
        EXEC_EDGES_MS[r.exec_b + 1],
    ).astype(np.int64)
    exec_ms[cached] = CACHED_EXEC_MS
    scan_pos = np.where(r.unique, rng.random(n), np.clip(tpl.scan_pos[tid] + noise, 0, 1))
    scanned = np.minimum(
        np.rint(_within(SCAN_EDGES_MB, r.scan_b, scan_pos, 0.01)), SCAN_EDGES_MB[r.scan_b + 1] - 1
    )
    scanned[cached] = 0.0
    # Spills are rare: some instances, long queries only.
    spill_p = np.where(inst.spill_prone[r.inst], 0.06 * np.maximum(r.exec_b - 2, 0), 0.0)
    spills = (rng.random(n) < spill_p) & ~cached
    spilled = np.where(spills, np.rint(scanned * rng.lognormal(-1.5, 1.0, n)) + 1, 0.0)

    # Queueing is likelier in busy hours; compiles happen on first runs and cache misses.
    queued = rng.random(n) < 0.35 * np.minimum(r.load / 2, 1.0)
    queue_ms = np.where(queued & ~cached, rng.lognormal(np.log(400), 1.8, n), 0).astype(np.int64)
    compiles = r.unique | (rng.random(n) < tpl.compiles[tid])
    compile_ms = np.where(compiles, rng.lognormal(np.log(1_500), 1.5, n), 0).astype(np.int64)

    fingerprint = np.where(r.unique, r.fingerprint, tpl.fingerprint[tid])

    def col(values: np.ndarray, type_: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
        return pa.array(values, type_, mask=null)

    def tpl_col(values: np.ndarray, null: np.ndarray) -> pa.Array:
        return col(values[tid], pa.int64(), null)

    tid_or_null = pa.array(tid, pa.int64(), mask=cached)
    query_type = np.where(cached, KIND["other"], r.kind)
    columns = {
        "deployment": pa.array(schema.DEPLOYMENTS).take(pa.array(inst.deployment[r.inst])),
        "instance_id": col(inst.instance_id[r.inst], pa.int64()),
        "cluster_size": col(inst.cluster_size[r.inst], pa.float64(), np.isnan(inst.cluster_size[r.inst])),
        "user_id": col(tpl.user[tid], pa.int64()),
        "database_id": col(tpl.database[tid], pa.int64()),
        "query_id": col(r.query_id, pa.int64()),
        "arrival_timestamp": col(r.t_us, schema.TIMESTAMP),
        "compile_duration_ms": col(compile_ms, pa.int64(), other),
        "queue_duration_ms": col(queue_ms, pa.int64()),
        "execution_duration_ms": col(exec_ms, pa.int64()),
        "feature_fingerprint": _hex16(fingerprint),
        "was_aborted": col(r.aborted, pa.bool_()),
        "was_cached": col(cached, pa.bool_()),
        "cache_source_query_id": col(r.source_query_id, pa.int64(), ~cached),
        "query_type": pa.array(KINDS).take(pa.array(query_type)),
        "num_permanent_tables_accessed": tpl_col(tpl.permanent, cached),
        "num_external_tables_accessed": tpl_col(tpl.external, cached),
        "num_system_tables_accessed": tpl_col(tpl.system, cached),
        "read_table_ids": tpl.read_ids.take(tid_or_null),
        "write_table_ids": tpl.write_ids.take(tid_or_null),
        "mbytes_scanned": col(scanned, pa.float64()),
        "mbytes_spilled": col(spilled, pa.float64()),
        "num_joins": tpl_col(tpl.joins, other),
        "num_scans": tpl_col(tpl.scans, other),
        "num_aggregations": tpl_col(tpl.aggregations, other),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=schema.ARROW_SCHEMA)


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def _hex16(values: np.ndarray) -> pa.Array:
    """16-character lowercase hex strings of uint64 values, built without Python strings."""
    raw = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    chars = np.empty((raw.shape[0], 16), np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 0x0F]
    offsets = np.arange(0, 16 * (raw.shape[0] + 1), 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), raw.shape[0], [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def write(table: pa.Table, out: str | Path) -> Path:
    """Write `table` as parquet with fixed options (same table, same bytes), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    # Dictionary-encode only the few-valued columns: trying it on ids and hashes costs time.
    few_valued = ["deployment", "instance_id", "cluster_size", "user_id", "database_id", "query_type",
                  "read_table_ids", "write_table_ids"]
    pq.write_table(table, tmp, compression="zstd", row_group_size=256 * 1024, use_dictionary=few_valued)
    tmp.replace(out)
    return out


def summary(table: pa.Table, out: str | Path | None = None) -> str:
    """A few lines for the terminal: rows, instances, date span, type mix, weekly shapes."""
    lines = [f"{table.num_rows:,} rows" + (f" -> {out}" if out else "")]
    if table.num_rows == 0:
        return lines[0]
    pairs = pc.unique(
        pc.binary_join_element_wise(table["deployment"], pc.cast(table["instance_id"], pa.string()), ":")
    )
    per_dep = Counter(p.split(":")[0] for p in pairs.to_pylist())
    lines.append("instances: " + ", ".join(f"{n} {d}" for d, n in sorted(per_dep.items())))
    lo, hi = pc.min_max(table["arrival_timestamp"]).values()
    lines.append(f"arrivals: {lo.as_py():%Y-%m-%d %H:%M} .. {hi.as_py():%Y-%m-%d %H:%M}")
    counts = pc.value_counts(table["query_type"]).to_pylist()
    mix = sorted(((c["counts"], c["values"]) for c in counts), reverse=True)
    lines.append("types: " + ", ".join(f"{t} {n / table.num_rows:.1%}" for n, t in mix))
    cached = pc.sum(table["was_cached"]).as_py() / table.num_rows
    aborted = pc.sum(table["was_aborted"]).as_py() / table.num_rows
    lines.append(f"cached {cached:.1%}, aborted {aborted:.2%}")
    for deployment, m in shapes.medians(shapes.instance_shapes(table)).items():
        lines.append(f"{deployment} weeks, medians over instances: weekend/weekday {m['weekend_ratio']:.2f}, "
                     f"autocorrelation 24 h {m['acf24']:.2f}, 168 h {m['acf168']:.2f}, CV {m['cv']:.2f}")
    return "\n".join(lines)
