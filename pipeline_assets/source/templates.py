"""Recurring query templates: "the same query" keeps its fingerprint, user, tables and rough cost.

Rows of one class (instance, kind, execution bucket, scan bucket) are spread over a few
templates with a skewed popularity, so a few dashboards dominate each class. Ingest templates
write one of the instance's ingest targets; selects mostly read those targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline_assets.source.distributions import KINDS, N_EXEC_BUCKETS, N_SCAN_BUCKETS
from pipeline_assets.source.instances import Instances


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


def build(
    rng: np.random.Generator,
    inst: Instances,
    row_inst: np.ndarray,
    kind: np.ndarray,
    exec_b: np.ndarray,
    scan_b: np.ndarray,
) -> Templates:
    """Templates of the given (non-cached) rows; `row_template` maps each row to its template."""
    # A class is (instance, kind, exec bucket, scan bucket); bigger classes get more templates.
    cls = ((row_inst * len(KINDS) + kind) * N_EXEC_BUCKETS + exec_b) * N_SCAN_BUCKETS + scan_b
    classes, inverse, sizes = np.unique(cls, return_inverse=True, return_counts=True)
    per_class = np.maximum(1, np.ceil(0.4 * np.sqrt(sizes))).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(per_class)[:-1]])
    # u**2 makes low ranks popular: a few dashboards dominate each class.
    rank = np.floor(per_class[inverse] * rng.random(kind.size) ** 2).astype(np.int64)
    row_template = first[inverse] + rank

    t_class = np.repeat(classes, per_class)
    t_kind = (t_class // (N_SCAN_BUCKETS * N_EXEC_BUCKETS)) % len(KINDS)
    t_inst = t_class // (N_SCAN_BUCKETS * N_EXEC_BUCKETS * len(KINDS))
    n = t_class.size
    tables = _template_tables(rng, inst, t_inst, t_kind)
    read_n = np.array([len(r) for r, _ in tables])
    joins = np.where(read_n > 1, read_n - 1 + rng.poisson(0.2, n), rng.poisson(0.1, n))
    kind_name = np.array(KINDS)[t_kind]
    plan_less = np.isin(kind_name, ["copy", "vacuum", "analyze", "other"])
    return Templates(
        row_template=row_template,
        fingerprint=mix64(rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)),
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


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    x = np.asarray(x, np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
