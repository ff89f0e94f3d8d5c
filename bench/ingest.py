"""Ingest benchmark: our raw dump against the Kafka client's limit and the original project's way.

    python bench/ingest.py                      # 1M rows; 10M backlog repeat per --big-rows
    python bench/ingest.py --rows 5000000 --big-rows 0

In one run, on a fresh topic of a private broker (free port, temporary storage):
  (a) bare   a confluent-kafka consume loop that discards the messages: the client's limit;
  (b) dump   our raw dump (pipeline_assets.raw.dump.consume.dump) into a temporary raw zone;
  (c) orig   the original project's way: json.loads per message -> pandas -> Parquet -> DuckDB COPY.
Each runs in its own child process, so its peak RSS is its own (the child's VmHWM). Then (b) runs
again on a backlog of --big-rows messages to show its peak RSS does not grow with the backlog.
Targets: b/a >= 0.7, b/c >= 10, dump peak RSS <= 1 GB at both sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)
from _common import (
    Results, Stopwatch, data_env, dir_bytes, private_broker, rate, run_child, scratch_dir, write_child_result,
)  # fmt: skip

DEFAULT_ROWS = 1_000_000
# Measured once on the 2-core bench machine (see bench/README.md): producing and dumping a 10M
# backlog takes about 6 minutes on top of the 1M run, which keeps the default run near the
# 10-minute budget. Pass --big-rows 0 to skip it.
DEFAULT_BIG_ROWS = 10_000_000
PARTITIONS = 3
SEED = 7
ORIGINAL_CHUNK = 50_000  # rows per pandas frame / Parquet file in (c), like the dump's chunk
RSS_TARGET_BYTES = 1 << 30


# --- the three consumers (run in child processes) ----------------------------------------------


def _consumer(bootstrap: str, group: str):
    """A consumer configured exactly like the raw dump's (same fetch sizes and queue bounds)."""
    from pipeline_assets.kafka.resource import KafkaResource
    from pipeline_assets.raw.dump.consume import CONSUMER_TUNING

    return KafkaResource(bootstrap_servers=bootstrap).consumer(group, **CONSUMER_TUNING)


def _assign_from_start(consumer, topic: str) -> None:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])


def _consume_all(consumer, expect: int, handle) -> int:
    """consume() in batches like the dump does, handing each batch to `handle`, until `expect`."""
    from pipeline_assets.raw.dump.consume import FETCH_BATCH, POLL_TIMEOUT_S

    seen = 0
    while seen < expect:
        batch = [m for m in consumer.consume(num_messages=FETCH_BATCH, timeout=POLL_TIMEOUT_S) if m.error() is None]
        handle(batch)
        seen += len(batch)
    return seen


def child_bare(bootstrap: str, topic: str, expect: int, work: Path) -> dict:
    with Stopwatch() as watch:
        consumer = _consumer(bootstrap, f"bench-bare-{uuid.uuid4().hex[:8]}")
        _assign_from_start(consumer, topic)
        messages = _consume_all(consumer, expect, lambda batch: None)
    consumer.close()
    return {"messages": messages, "rows": messages, **watch.figures()}


def child_dump(bootstrap: str, topic: str, expect: int, work: Path) -> dict:
    from pipeline_assets.raw.dump import consume as kafka_consume

    options = kafka_consume.DumpOptions(
        topic=topic,
        group_id=f"bench-dump-{uuid.uuid4().hex[:8]}",
        raw_dir=work / "raw",
        dead_letter_dir=work / "dead_letters",
        batch_id="bench",
        max_messages=expect,  # the whole backlog in one run (the asset's default caps it at 5M)
    )
    consumer = _consumer(bootstrap, options.group_id)
    try:
        with Stopwatch() as watch:
            stats = kafka_consume.dump(consumer, options, log=lambda line: None)
    finally:
        consumer.close()
    s = stats.summary
    return {
        "messages": stats.messages,
        "rows": s.rows,
        "dead_letters": sum(s.dead_letters.values()),
        "files": s.files,
        "bytes": s.bytes,
        "commits": stats.commits,
        "lag_after": sum(stats.lag_after.values()),
        **watch.figures(),
    }


def child_original(bootstrap: str, topic: str, expect: int, work: Path) -> dict:
    """The original project's ingest: a dict per message, a DataFrame per chunk, Parquet, COPY."""
    import duckdb
    import pandas as pd

    parts = work / "original"
    parts.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(work / "original.duckdb"))
    rows: list[dict] = []
    files = 0

    def flush() -> None:
        nonlocal files
        if not rows:
            return
        frame = pd.DataFrame(rows)
        frame["arrival_timestamp"] = pd.to_datetime(frame["arrival_timestamp"])
        path = parts / f"part-{files:05d}.parquet"
        frame.to_parquet(path, index=False)
        if files == 0:
            con.execute(f"CREATE TABLE raw AS SELECT * FROM read_parquet('{path}') LIMIT 0")
        con.execute(f"COPY raw FROM '{path}' (FORMAT parquet)")
        files += 1
        rows.clear()

    def handle(batch) -> None:
        rows.extend(json.loads(m.value()) for m in batch)
        if len(rows) >= ORIGINAL_CHUNK:
            flush()

    with Stopwatch() as watch:
        consumer = _consumer(bootstrap, f"bench-orig-{uuid.uuid4().hex[:8]}")
        _assign_from_start(consumer, topic)
        messages = _consume_all(consumer, expect, handle)
        flush()
        con.close()
    consumer.close()
    with duckdb.connect(str(work / "original.duckdb"), read_only=True) as check:
        loaded = check.execute("SELECT count(*) FROM raw").fetchone()[0]
    return {"messages": messages, "rows": int(loaded), "files": files, **watch.figures()}


CHILDREN = {"bare": child_bare, "dump": child_dump, "original": child_original}


# --- the bench -----------------------------------------------------------------------------------


def produce_backlog(source: Path, topic: str, rows: int, source_rows: int, bootstrap: str) -> dict:
    """`rows` messages on `topic`: the source replayed as often as needed (the dump ignores repeats)."""
    from pipeline_assets.kafka.producer import produce

    sent = seconds = 0.0
    for _ in range(math.ceil(rows / source_rows)):
        stats = produce(source, topic, limit=int(min(source_rows, rows - sent)), partitions=PARTITIONS, bootstrap=bootstrap)
        if stats.errors:
            raise RuntimeError(f"producing to {topic}: {stats.errors} messages not delivered ({stats.first_error})")
        sent += stats.rows
        seconds += stats.seconds
    return {"rows": int(sent), "seconds": seconds, "rows_per_s": rate(int(sent), seconds)}


def measure(case: str, bootstrap: str, topic: str, expect: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    print(f"\n== ({case}) {expect:,} messages from {topic}", flush=True)
    child = run_child(
        [__file__, "--child", case, "--bootstrap", bootstrap, "--topic", topic, "--expect", str(expect), "--work", str(work)],
        env=data_env(work),
    )
    r = child.result
    if r["messages"] != expect:
        raise RuntimeError(f"({case}) consumed {r['messages']:,} messages, expected {expect:,}")
    r |= {
        "peak_rss_bytes": child.peak_rss_bytes,
        "wall_seconds": child.wall_seconds,
        "rows_per_s": rate(expect, r["seconds"]),
        "cpu_us_per_msg": r["cpu_seconds"] / expect * 1e6,
    }
    print(f"   {r['rows_per_s']:,.0f} msg/s in {r['seconds']:.1f}s, {r['cpu_us_per_msg']:.1f} CPU-us/msg, "
          f"peak RSS {r['peak_rss_bytes'] / 2**20:,.0f} MiB", flush=True)  # fmt: skip
    return r


def run(rows: int, big_rows: int, keep: bool) -> Results:
    from pipeline_assets.source import generator

    results = Results("ingest", {"rows": rows, "big_rows": big_rows, "partitions": PARTITIONS})
    with scratch_dir("ingest", keep) as root, private_broker(root / "kafka") as bootstrap:
        source = root / "source.parquet"
        started = time.monotonic()
        generator.write(generator.generate(rows, seed=SEED), source)
        print(f"generated {rows:,} rows in {time.monotonic() - started:.1f}s", flush=True)
        topic = f"bench.ingest.{uuid.uuid4().hex[:6]}"
        produced = produce_backlog(source, topic, rows, rows, bootstrap)

        bare = measure("bare", bootstrap, topic, rows, root / "bare")
        dump = measure("dump", bootstrap, topic, rows, root / "dump")
        orig = measure("original", bootstrap, topic, rows, root / "original")
        if dump["rows"] + dump["dead_letters"] != rows or orig["rows"] != rows:
            raise RuntimeError(f"rows lost: dump wrote {dump['rows']:,} (+{dump['dead_letters']} dead), original {orig['rows']:,}")

        results.add("produce (setup, not compared)", round(produced["rows_per_s"]), "msg/s")
        results.add("(a) bare consume loop", round(bare["rows_per_s"]), "msg/s")
        results.add("(b) raw dump", round(dump["rows_per_s"]), "msg/s")
        results.add("(c) original: json.loads+pandas+COPY", round(orig["rows_per_s"]), "msg/s")
        results.ratio("b / a", dump["rows_per_s"], bare["rows_per_s"], ">= 0.7")
        results.ratio("b / c", dump["rows_per_s"], orig["rows_per_s"], ">= 10")
        # b can never beat a, so a / c is the most b / c can be on this machine in this run.
        results.add("a / c (the ceiling of b / c)", round(bare["rows_per_s"] / orig["rows_per_s"], 3), "x")
        # CPU per message moves less with others' load than wall time: a second view of the same runs.
        for label, r in (("a", bare), ("b", dump), ("c", orig)):
            results.add(f"({label}) CPU per message, all threads", round(r["cpu_us_per_msg"], 1), "us")
        results.add(f"(b) peak RSS, {rows:,} backlog", round(dump["peak_rss_bytes"] / 2**20), "MiB", "<= 1024",
                    dump["peak_rss_bytes"] <= RSS_TARGET_BYTES)  # fmt: skip
        results.add("(a) peak RSS", round(bare["peak_rss_bytes"] / 2**20), "MiB")
        results.add("(c) peak RSS", round(orig["peak_rss_bytes"] / 2**20), "MiB")
        results.add("(b) raw zone size", round(dump["bytes"] / 2**20, 1), "MiB")
        results.add("(c) Parquet + DuckDB size", round(dir_bytes(root / "original") / 2**20, 1), "MiB")
        results.details |= {"produce": produced, "bare": bare, "dump": dump, "original": orig}

        if big_rows:
            big_topic = f"bench.ingest.big.{uuid.uuid4().hex[:6]}"
            results.details["big_produce"] = produce_backlog(source, big_topic, big_rows, rows, bootstrap)
            big = measure("dump", bootstrap, big_topic, big_rows, root / "dump-big")
            results.details["big_dump"] = big
            results.add(f"(b) raw dump, {big_rows:,} backlog", round(big["rows_per_s"]), "msg/s")
            results.add(f"(b) peak RSS, {big_rows:,} backlog", round(big["peak_rss_bytes"] / 2**20), "MiB", "<= 1024",
                        big["peak_rss_bytes"] <= RSS_TARGET_BYTES)  # fmt: skip
            results.add("(b) peak RSS growth, big / small", round(big["peak_rss_bytes"] / dump["peak_rss_bytes"], 2), "x")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="messages for (a), (b) and (c)")
    parser.add_argument("--big-rows", type=int, default=DEFAULT_BIG_ROWS, help="backlog of the (b) repeat; 0 skips it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (raw zone, broker) for a look")
    # Internal: one measured case in a child process.
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        write_child_result(args.result_file, CHILDREN[args.child](args.bootstrap, args.topic, args.expect, args.work))
        return
    results = run(args.rows, args.big_rows, args.keep)
    results.print_table()
    results.save()


if __name__ == "__main__":
    main()
