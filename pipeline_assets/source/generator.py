"""Seeded synthetic Redset rows with the shapes the paper and /work/shared/redset.md describe.

The generator works in three layers, all vectorised with numpy (Python loops run only per
instance or per query template, never per row):

1. instances: a few provisioned and/or serverless clusters, each with its own load, type mix,
   users, databases, tables and share of one-off queries;
2. rows: each row gets a query type, an execution-time bucket and a scan-size bucket. The
   buckets are assigned by rank over latent scores, so their shares match the paper exactly
   while slow types (ctas, copy) still land in slow buckets;
3. templates: rows of one (instance, type, exec bucket, scan bucket) class are spread over a
   few recurring query templates with a skewed popularity. A template fixes the fingerprint,
   user, database, tables and the rough duration, so "the same query" behaves the same.

Ingest templates (copy, insert) run on fixed periods; the other queries follow a diurnal and
weekly curve. Cached rows copy an earlier select of the same instance and point at it.
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

US_PER_HOUR = 3_600 * 1_000_000
US_PER_DAY = 24 * US_PER_HOUR

# Query-type mix of all rows (the paper: select about 49%, ctas about 2%). "cached" is the
# cached part of "other": it becomes query_type 'other' with was_cached set.
TYPE_MIX: dict[str, float] = {
    "select": 0.49,
    "insert": 0.14,
    "copy": 0.06,
    "update": 0.05,
    "delete": 0.04,
    "ctas": 0.02,
    "unload": 0.005,
    "vacuum": 0.003,
    "analyze": 0.012,
    "other": 0.09,
    "cached": 0.10,
}
KINDS = tuple(TYPE_MIX)
KIND = {name: code for code, name in enumerate(KINDS)}
CACHED = KIND["cached"]
INGEST_KINDS = tuple(KIND[t] for t in schema.INGEST_QUERY_TYPES)
# Shift of each kind's latent execution score, in standard deviations: ctas and copy are the
# heavy ones (ctas is about 2% of queries but 16% of load).
EXEC_SHIFT = {"ctas": 1.3, "copy": 0.9, "insert": 0.4, "vacuum": 1.5, "unload": 1.0, "analyze": 0.3}
SCAN_SHIFT = {"ctas": 1.0, "copy": 0.8, "unload": 0.8, "vacuum": 0.8, "other": -1.5}

# Execution time buckets (upper edges in ms) and the paper's share of queries in each.
EXEC_EDGES_MS = np.array([0, 10, 100, 1_000, 10_000, 60_000, 600_000, 3_600_000, 14_400_000])
EXEC_SHARES = np.array([0.137, 0.483, 0.249, 0.099, 0.022, 0.0086, 0.0008, 0.00008])
# Scan size buckets (upper edges in MB) and the paper's share of queries in each.
SCAN_EDGES_MB = np.array([0, 1_024, 10_240, 102_400, 1_048_576, 8_388_608])
SCAN_SHARES = np.array([0.75, 0.19, 0.041, 0.011, 0.0024])

CACHED_EXEC_MS = 1
ABORT_RATE = 0.01
CLUSTER_SIZES = np.array([2.0, 4.0, 4.0, 6.0, 8.0, 8.0, 10.0, 16.0, 32.0])
# Relative load by hour of day (local time): quiet nights, a working-day plateau.
DIURNAL = 0.3 + 1.3 * np.exp(-(((np.arange(24) - 13.0) / 4.5) ** 2))
WEEKEND_FACTOR = 0.6
MAX_TABLE_ID = 400_000


@dataclass(frozen=True)
class Instances:
    """Per-instance attributes, one array element per instance."""

    deployment: np.ndarray  # index into schema.DEPLOYMENTS
    instance_id: np.ndarray
    cluster_size: np.ndarray  # NaN for serverless
    rows: np.ndarray
    utc_offset_h: np.ndarray
    growth: np.ndarray  # load trend over the span, -0.5..0.5
    unique_share: np.ndarray  # share of one-off (non-repeating) queries
    abort_rate: np.ndarray
    spill_prone: np.ndarray
    empty_ids_as_null: np.ndarray  # how "no tables" is stored: NULL or ''
    users: list[np.ndarray]
    databases: list[np.ndarray]
    tables: list[np.ndarray]  # the first `ingested` tables are ingest targets
    ingested: np.ndarray


def default_instances(rows: int) -> int:
    """A few instances (8-20), more for bigger runs, so per-instance dashboards mean something."""
    return int(np.clip(rows // 50_000, 8, 20))


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
    inst = _instances(rng, rows, n_inst, deployment)
    span_us = days * US_PER_DAY

    kind, row_inst = _kinds(rng, inst)
    cached = kind == CACHED
    base = np.flatnonzero(~cached)
    exec_b = np.zeros(rows, np.int64)
    scan_b = np.zeros(rows, np.int64)
    exec_b[base], scan_b[base] = _buckets(rng, kind[base], rows, int(cached.sum()))

    tpl = _templates(rng, inst, row_inst[base], kind[base], exec_b[base], scan_b[base])
    row_tpl = np.full(rows, -1, np.int64)
    row_tpl[base] = tpl.row_template
    unique = np.zeros(rows, bool)
    repeatable = ~np.isin(kind[base], INGEST_KINDS)
    unique[base] = repeatable & (rng.random(base.size) < inst.unique_share[row_inst[base]])

    t_us = np.zeros(rows, np.int64)
    t_us[base] = _arrivals(rng, inst, row_inst[base], kind[base], tpl.row_template, start, days)
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
    fingerprint = np.where(unique, _mix64(origin.astype(np.uint64) + _mix64(np.uint64(seed))), 0)
    # From here on every row array is in output (arrival) order.
    sorted_rows = _Rows(
        kind=kind[order], inst=row_inst[order], exec_b=exec_b[order], scan_b=scan_b[order],
        tpl=row_tpl[order], unique=unique[order], fingerprint=fingerprint[order],
        t_us=t_us[order] + int(np.datetime64(start, "us").astype(np.int64)), aborted=aborted[order],
        cached=cached[order], query_id=query_id[order], source_query_id=source_qid[order],
    )
    return _assemble(rng, inst, tpl, sorted_rows)


def _instances(rng: np.random.Generator, rows: int, n: int, deployment: str) -> Instances:
    if deployment == "both" and n >= 2:
        dep = np.repeat([0, 1], [(n + 1) // 2, n // 2])
    else:
        dep = np.full(n, 0 if deployment in ("both", "provisioned") else 1)
    ids = np.zeros(n, np.int64)
    for d in (0, 1):  # ids are unique within a deployment, like Redset's 0-199
        mask = dep == d
        ids[mask] = np.sort(rng.choice(200, mask.sum(), replace=False))
    weights = rng.lognormal(0, 0.6, n)
    n_users = np.clip(rng.lognormal(3.0, 0.8, n).astype(int), 3, 300)
    n_dbs = rng.integers(1, 5, n)
    n_tables = np.clip(rng.lognormal(4.2, 0.6, n).astype(int), 12, 600)
    return Instances(
        deployment=dep,
        instance_id=ids,
        cluster_size=np.where(dep == 0, rng.choice(CLUSTER_SIZES, n), np.nan),
        rows=rng.multinomial(rows, weights / weights.sum()),
        utc_offset_h=rng.choice([-8, -5, -4, 0, 1, 2, 8, 9], n),
        growth=rng.uniform(-0.5, 0.5, n),
        unique_share=rng.uniform(0.05, 0.40, n),
        abort_rate=rng.uniform(0.6, 1.4, n) * ABORT_RATE / (1 - TYPE_MIX["cached"]),
        spill_prone=rng.random(n) < 0.3,
        empty_ids_as_null=rng.random(n) < 0.5,
        users=[100 + rng.choice(5_000, k, replace=False) for k in n_users],
        databases=[rng.choice(64, k, replace=False) for k in n_dbs],
        tables=[1 + rng.choice(MAX_TABLE_ID, k, replace=False) for k in n_tables],
        ingested=np.maximum(2, (n_tables * rng.uniform(0.2, 0.4, n)).astype(int)),
    )


def _kinds(rng: np.random.Generator, inst: Instances) -> tuple[np.ndarray, np.ndarray]:
    """Each row's kind (query type, or cached) and instance; each instance has its own mix."""
    mix = np.array(list(TYPE_MIX.values()))
    kinds, owners = [], []
    for i, n in enumerate(inst.rows):
        counts = rng.multinomial(n, rng.dirichlet(400 * mix))
        if counts[KIND["select"]] == 0:  # nothing to answer from the cache: plain 'other'
            counts[KIND["other"]] += counts[CACHED]
            counts[CACHED] = 0
        kinds.append(np.repeat(np.arange(len(KINDS)), counts))
        owners.append(np.full(n, i))
    return np.concatenate(kinds), np.concatenate(owners)


def _rank_buckets(score: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Bucket b for the rows whose score ranks within the b-th slice of `counts`."""
    bucket = np.empty(score.size, np.int64)
    bucket[np.argsort(score, kind="stable")] = np.searchsorted(
        np.cumsum(counts), np.arange(score.size), side="right"
    )
    return bucket


def _bucket_counts(shares: np.ndarray, total: int, reserved_first: int, n: int) -> np.ndarray:
    """Split n rows over buckets so that, with `reserved_first` rows already in bucket 0,
    the bucket shares of `total` rows follow `shares`."""
    target = shares / shares.sum() * total
    target[0] = max(target[0] - reserved_first, 0.0)
    counts = np.floor(target / target.sum() * n).astype(np.int64)
    counts[np.argmax(counts)] += n - counts.sum()
    return counts


def _buckets(
    rng: np.random.Generator, kind: np.ndarray, total: int, n_cached: int
) -> tuple[np.ndarray, np.ndarray]:
    """Execution and scan buckets of the non-cached rows (cached rows are 1 ms, 0 MB)."""
    n = kind.size
    exec_shift = np.array([EXEC_SHIFT.get(k, 0.0) for k in KINDS])
    scan_shift = np.array([SCAN_SHIFT.get(k, 0.0) for k in KINDS])
    z_exec = rng.standard_normal(n) + exec_shift[kind]
    # Scans correlate with execution time, so big scans are mostly slow queries.
    z_scan = 0.6 * (z_exec - z_exec.mean()) / z_exec.std() + 0.8 * rng.standard_normal(n) + scan_shift[kind]
    exec_b = _rank_buckets(z_exec, _bucket_counts(EXEC_SHARES, total, n_cached, n))
    scan_b = _rank_buckets(z_scan, _bucket_counts(SCAN_SHARES, n, 0, n))
    return exec_b, scan_b


@dataclass(frozen=True)
class Templates:
    """Recurring query templates; one array element per template."""

    row_template: np.ndarray  # template of each non-cached row
    fingerprint: np.ndarray  # uint64 hash
    exec_pos: np.ndarray  # position within the execution bucket, 0..1 (log scale)
    scan_pos: np.ndarray
    user: np.ndarray
    database: np.ndarray
    read_ids: pa.Array  # string, NULL or '' when none
    write_ids: pa.Array
    permanent: np.ndarray
    external: np.ndarray
    system: np.ndarray
    joins: np.ndarray
    scans: np.ndarray
    aggregations: np.ndarray
    compiles: np.ndarray  # share of runs that compile (the rest hit the compile cache)


def _templates(
    rng: np.random.Generator,
    inst: Instances,
    row_inst: np.ndarray,
    kind: np.ndarray,
    exec_b: np.ndarray,
    scan_b: np.ndarray,
) -> Templates:
    # A class is (instance, kind, exec bucket, scan bucket); bigger classes get more templates.
    cls = ((row_inst * len(KINDS) + kind) * len(EXEC_SHARES) + exec_b) * len(SCAN_SHARES) + scan_b
    classes, inverse, sizes = np.unique(cls, return_inverse=True, return_counts=True)
    per_class = np.maximum(1, np.ceil(0.4 * np.sqrt(sizes))).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(per_class)[:-1]])
    # u**2 makes low ranks popular: a few dashboards dominate each class.
    rank = np.floor(per_class[inverse] * rng.random(kind.size) ** 2).astype(np.int64)
    row_template = first[inverse] + rank

    t_class = np.repeat(classes, per_class)
    t_kind = (t_class // (len(SCAN_SHARES) * len(EXEC_SHARES))) % len(KINDS)
    t_inst = t_class // (len(SCAN_SHARES) * len(EXEC_SHARES) * len(KINDS))
    n = t_class.size
    tables = _template_tables(rng, inst, t_inst, t_kind)
    read_n = np.array([len(r) for r, _ in tables])
    joins = np.where(read_n > 1, read_n - 1 + rng.poisson(0.2, n), rng.poisson(0.1, n))
    kind_name = np.array(KINDS)[t_kind]
    plan_less = np.isin(kind_name, ["copy", "vacuum", "analyze", "other"])
    return Templates(
        row_template=row_template,
        fingerprint=_mix64(rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)),
        exec_pos=rng.random(n),
        scan_pos=rng.random(n),
        user=_pick_skewed(rng, inst.users, t_inst),
        database=_pick_skewed(rng, inst.databases, t_inst),
        read_ids=_id_lists([r for r, _ in tables], inst.empty_ids_as_null[t_inst]),
        write_ids=_id_lists([w for _, w in tables], inst.empty_ids_as_null[t_inst]),
        permanent=np.array([len(set(r) | set(w)) for r, w in tables]),
        external=np.where(rng.random(n) < 0.03, 1 + rng.poisson(0.5, n), 0),
        system=np.where(kind_name == "other", 1 + rng.poisson(1.0, n), (rng.random(n) < 0.05).astype(int)),
        joins=np.where(plan_less, 0, joins),
        scans=np.where(plan_less, 0, read_n + rng.poisson(0.05, n)),
        aggregations=np.where(plan_less, 0, rng.poisson(2.3, n)),
        compiles=rng.uniform(0.05, 0.5, n),
    )


def _pick_skewed(rng: np.random.Generator, pools: list[np.ndarray], owners: np.ndarray) -> np.ndarray:
    """One element of pools[owner] per owner, the first elements much likelier (a few heavy users)."""
    sizes = np.array([len(p) for p in pools])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    index = (sizes[owners] * rng.random(owners.size) ** 3).astype(np.int64)
    return np.concatenate(pools)[offsets[owners] + index]


def _template_tables(
    rng: np.random.Generator, inst: Instances, t_inst: np.ndarray, t_kind: np.ndarray
) -> list[tuple[list[int], list[int]]]:
    """(tables read, tables written) per template, from the template's own instance.

    Ingest writes one of the instance's ingest targets; selects mostly read those targets, so
    the time since / until the last ingest means something.
    """
    out = []
    n_read = np.minimum(1 + rng.poisson(0.35, t_kind.size), 4)
    for i, k, nr in zip(t_inst, t_kind, n_read):
        tables, hot = inst.tables[i], inst.ingested[i]
        name = KINDS[k]

        def pick(count: int, hot_share: float = 0.7) -> list[int]:
            picks = []
            for _ in range(count):
                pool = tables[:hot] if rng.random() < hot_share else tables[hot:]
                picks.append(int(pool[rng.integers(len(pool))]))
            return list(dict.fromkeys(picks))

        if name in ("copy", "insert"):
            target = [int(tables[rng.integers(hot)])]
            staged = pick(rng.integers(0, 3), hot_share=0.0) if name == "insert" else []
            out.append((staged, target))
        elif name in ("update", "delete"):
            target = pick(1)
            out.append((target + pick(rng.integers(0, 2)), target))
        elif name == "ctas":
            out.append((pick(nr), pick(1, hot_share=0.0)))
        elif name == "vacuum":
            out.append(([], pick(1)))
        elif name in ("select", "unload", "analyze"):
            out.append((pick(nr if name != "analyze" else 1), []))
        else:  # other: system queries, no permanent tables
            out.append(([], []))
    return out


def _id_lists(lists: list[list[int]], empty_as_null: np.ndarray) -> pa.Array:
    return pa.array(
        [",".join(map(str, ids)) if ids else (None if null else "") for ids, null in zip(lists, empty_as_null)],
        pa.string(),
    )


def _arrivals(
    rng: np.random.Generator,
    inst: Instances,
    row_inst: np.ndarray,
    kind: np.ndarray,
    row_template: np.ndarray,
    start: date,
    days: int,
) -> np.ndarray:
    """Microseconds since the start: ingest templates run on fixed periods, the rest follow
    a diurnal, weekly and trend curve in the instance's local time."""
    n = kind.size
    t = np.zeros(n, np.int64)
    span = days * US_PER_DAY

    ingest = np.flatnonzero(np.isin(kind, INGEST_KINDS))
    if ingest.size:
        tpl = row_template[ingest]
        by_tpl = ingest[np.argsort(tpl, kind="stable")]
        ids, first, counts = np.unique(row_template[by_tpl], return_index=True, return_counts=True)
        rank = np.arange(by_tpl.size) - np.repeat(first, counts)
        period = span / counts
        phase = rng.random(ids.size) * period
        jitter = rng.uniform(0, 0.004, by_tpl.size) * np.repeat(period, counts)
        at = np.repeat(phase, counts) + rank * np.repeat(period, counts) + jitter
        t[by_tpl] = np.clip(at, 0, span - 1).astype(np.int64)

    other = np.flatnonzero(~np.isin(kind, INGEST_KINDS))
    hour_p = DIURNAL / DIURNAL.sum()
    day = np.zeros(other.size, np.int64)
    weekly = np.where((np.arange(days) + start.weekday()) % 7 >= 5, WEEKEND_FACTOR, 1.0)
    owner = row_inst[other]
    for i in range(len(inst.rows)):
        mine = np.flatnonzero(owner == i)
        w = weekly * (1 + inst.growth[i] * (np.arange(days) / days - 0.5) * 2)
        day[mine] = rng.choice(days, mine.size, p=w / w.sum())
    local_hour = rng.choice(24, other.size, p=hour_p)
    hour = (local_hour - inst.utc_offset_h[owner]) % 24
    t[other] = day * US_PER_DAY + hour * US_PER_HOUR + rng.integers(0, US_PER_HOUR, other.size)
    return t


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
    hour = (r.t_us // US_PER_HOUR) % 24
    local = (hour + inst.utc_offset_h[r.inst]) % 24
    busy = DIURNAL[local] / DIURNAL.max()
    queued = rng.random(n) < 0.35 * busy
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


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    x = np.asarray(x, np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


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
    """A few lines for the terminal: rows, instances, date span, type mix."""
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
    return "\n".join(lines)

