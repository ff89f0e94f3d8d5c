"""Raw dump throughput against a bare confluent-kafka consume loop, on the same backlog.

    .venv/bin/python bench/raw_dump_bench.py --rows 1000000 [--rounds 2] [--bootstrap HOST:PORT]

Without --bootstrap it starts a private broker (pipeline_assets.kafka.broker, free ports,
temporary home). It produces `--rows` generated rows once with the project's producer, then,
alternating for `--rounds` rounds, consumes the whole topic with a fresh group:

- bare: consume(10_000) in a loop and touch each value (the ceiling for any Python consumer);
- dump: kafka_dump.dump() with its default settings (parse, write Parquet, fsync, commit).

Each measurement runs in its own process, so its peak RSS is its own. Prints one line per run,
the medians and the ratio dump/bare; writes bench/results/raw_dump.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "raw_dump.json"


def bare(topic: str) -> dict:
    from confluent_kafka import Consumer, TopicPartition

    from pipeline_assets.kafka.config import client_config
    from pipeline_assets.raw import offsets

    consumer = Consumer(client_config(**{"group.id": f"bench-bare-{uuid.uuid4().hex}", "enable.auto.commit": False}))
    plan = offsets.partition_offsets(consumer, topic)
    total = sum(p.high for p in plan)
    consumer.assign([TopicPartition(topic, p.partition, 0) for p in plan])
    started = time.perf_counter()
    n = size = 0
    while n < total:
        batch = consumer.consume(num_messages=10_000, timeout=1.0)
        for m in batch:
            size += len(m.value())
        n += len(batch)
    seconds = time.perf_counter() - started
    consumer.close()
    return {"messages": n, "seconds": seconds, "bytes": size}


def dump(topic: str, out: str) -> dict:
    from pipeline_assets.raw import kafka_dump
    from pipeline_assets.resources import KafkaResource

    group = f"bench-dump-{uuid.uuid4().hex}"
    options = kafka_dump.DumpOptions(
        topic=topic, group_id=group, raw_dir=Path(out) / "raw", dead_letter_dir=Path(out) / "dead",
        batch_id=group, max_messages=10**12,
    )  # fmt: skip
    consumer = KafkaResource().consumer(group, **kafka_dump.CONSUMER_TUNING)
    started = time.perf_counter()
    stats = kafka_dump.dump(consumer, options, log=lambda _: None)
    seconds = time.perf_counter() - started
    consumer.close()
    return {"messages": stats.messages, "rows": stats.summary.rows, "seconds": seconds, "bytes": stats.summary.bytes}


def measure(kind: str, topic: str, out: str) -> dict:
    """Run one measurement in a child process; add its peak RSS."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, "--topic", topic, "--out", out], stdout=subprocess.PIPE
    )
    stdout = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{kind} failed with status {status}")
    result = json.loads(stdout)
    result |= {"kind": kind, "rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}
    result["msgs_per_s"] = result["messages"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--child", choices=["bare", "dump"])
    parser.add_argument("--topic")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(bare(args.topic) if args.child == "bare" else dump(args.topic, args.out)))
        return

    from pipeline_assets.kafka import broker, producer
    from pipeline_assets.source import generator

    with tempfile.TemporaryDirectory(prefix="raw-bench-") as tmp:
        home = Path(tmp) / "kafka"
        if args.bootstrap is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from conftest import start_test_broker

            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = start_test_broker(home).bootstrap
        else:
            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = args.bootstrap
        try:
            topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
            source = generator.write(generator.generate(args.rows, seed=7), Path(tmp) / "rows.parquet")
            producer.produce(source, topic, progress=False)
            runs = []
            for round_ in range(args.rounds):
                for kind in ("bare", "dump"):
                    result = measure(kind, topic, str(Path(tmp) / f"out-{round_}"))
                    runs.append(result)
                    print(
                        f"{kind:4s} {result['messages']:,} msgs in {result['seconds']:.1f}s: "
                        f"{result['msgs_per_s']:,.0f} msg/s, peak RSS {result['rss_mb']:.0f} MB, "
                        f"CPU {result['cpu_s']:.1f}s",
                        flush=True,
                    )
        finally:
            if args.bootstrap is None:
                broker.stop(home, quiet=True)

    median = {k: statistics.median(r["msgs_per_s"] for r in runs if r["kind"] == k) for k in ("bare", "dump")}
    summary = {
        "rows": args.rows,
        "bare_msgs_per_s": median["bare"],
        "dump_msgs_per_s": median["dump"],
        "ratio": median["dump"] / median["bare"],
        "dump_peak_rss_mb": max(r["rss_mb"] for r in runs if r["kind"] == "dump"),
        "load_average": os.getloadavg(),
        "runs": runs,
    }
    print(f"median: bare {median['bare']:,.0f} msg/s, dump {median['dump']:,.0f} msg/s, ratio {summary['ratio']:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
