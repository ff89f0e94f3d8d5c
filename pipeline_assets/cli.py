"""The `redset` command: everything that is not a Dagster job.

    redset generate --rows N --seed S --out PATH
    redset kafka start|stop|status|fetch
    redset spark start|stop|status
    redset produce --source PATH|URL [--speed FACTOR|max]
    redset demo
    redset live        live mode without Dagster's daemon: Kafka -> raw -> dbt -> snapshot, in cycles
    redset metrics     the batch path's Prometheus metrics on 127.0.0.1:9108 (REDSET_METRICS_PORT)
    redset -v ...      also show librdkafka's own log lines (each refused connection, retries)

Each subcommand imports its module lazily, so `redset kafka status` does not pay for pandas.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date

from pipeline_assets import settings
from pipeline_assets.kafka.config import LIBRDKAFKA_LOG

# Until this module becomes the package cli/ (cli/main.py), its command modules live in cli/.
__path__ = [os.path.join(os.path.dirname(__file__), "cli")]


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    speed = float(value)
    if speed <= 0:
        raise argparse.ArgumentTypeError("speed must be > 0, or 'max'")
    return speed


def cmd_generate(args: argparse.Namespace) -> int:
    from pipeline_assets.source import generator

    table = generator.generate(
        rows=args.rows, seed=args.seed, deployment=args.deployment, start=args.start, days=args.days
    )
    generator.write(table, args.out)
    print(generator.summary(table, args.out))
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    from pipeline_assets.kafka import broker, jars

    try:
        if args.action == "fetch":
            jars.fetch_jars()
        elif args.action == "start":
            broker.start(port=args.port)
        elif args.action == "stop":
            broker.stop()
        else:
            return 0 if broker.status() else 3  # 3: not running, as service managers say
    except broker.BrokerError as exc:
        print(f"redset kafka {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_spark(args: argparse.Namespace) -> int:
    from pipeline_assets.spark import cluster

    try:
        if args.action == "start":
            cluster.start(workers=args.workers)
        elif args.action == "stop":
            cluster.stop()
        else:
            return 0 if cluster.status() else 3  # 3: not running, as service managers say
    except cluster.ClusterError as exc:
        print(f"redset spark {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from pipeline_assets.kafka import producer
    from pipeline_assets.source.conform import SchemaError

    try:
        stats = producer.produce(
            source=args.source,
            topic=args.topic,
            batch_size=args.batch_size,
            speed=args.speed,
            limit=args.limit,
            partitions=args.partitions,
            full_speed_hours=args.full_speed_hours,
        )
    except (producer.ProduceError, SchemaError, FileNotFoundError) as exc:
        print(f"redset produce: {exc}", file=sys.stderr)
        return 1
    return 0 if stats.errors == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline_assets import demo

    return demo.run(source=args.source, rows=args.rows, speed=args.speed)


def cmd_live(args: argparse.Namespace) -> int:
    import threading

    import dagster as dg

    from pipeline_assets.live.loop import LiveLoop
    from pipeline_assets.live.report import report_runless
    from pipeline_assets.live.stopping import stop_on_signals
    from pipeline_assets.live.switch import LiveModeBusy

    log = logging.getLogger("pipeline_assets.live")
    log.setLevel(logging.INFO)
    if not os.environ.get("DAGSTER_HOME"):
        print("redset live: set DAGSTER_HOME to the Dagster instance to report to (e.g. `make dagster-home`, "
              "then DAGSTER_HOME=$PWD/.dagster_home)", file=sys.stderr)  # fmt: skip
        return 1
    stop = threading.Event()
    with dg.DagsterInstance.get() as instance, stop_on_signals(stop, log.info):
        loop = LiveLoop(instance, stop, where="redset live", log=log, max_cycles=args.max_cycles)
        try:
            for events in loop.cycles():
                report_runless(instance, events)
        except LiveModeBusy as exc:
            print(f"redset live: {exc}", file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    verbose_help = "show librdkafka's own log lines too"
    parser = argparse.ArgumentParser(prog="redset", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # Also after the subcommand (`redset produce -v`); SUPPRESS keeps it from resetting `redset -v produce`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", parents=[common], help="write seeded synthetic Redset rows to a parquet file")
    gen.add_argument("--rows", type=int, default=1_000_000)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--out", default=str(settings.data_dir() / "synthetic.parquet"))
    gen.add_argument("--deployment", choices=["provisioned", "serverless", "both"], default="both")
    gen.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 1))
    gen.add_argument("--days", type=int, default=91)
    gen.set_defaults(func=cmd_generate)

    kafka = sub.add_parser("kafka", parents=[common], help="run the local single-node KRaft broker")
    kafka.add_argument("action", choices=["start", "stop", "status", "fetch"])
    kafka.add_argument("--port", type=int, default=None, help="listener port (default 9092 or REDSET_KAFKA_PORT)")
    kafka.set_defaults(func=cmd_kafka)

    spark = sub.add_parser("spark", parents=[common], help="run the local Spark standalone master and workers")
    spark.add_argument("action", choices=["start", "stop", "status"])
    spark.add_argument("--workers", type=int, default=None, help="workers to start (default 2 or REDSET_SPARK_WORKERS)")
    spark.set_defaults(func=cmd_spark)

    prod = sub.add_parser("produce", parents=[common], help="replay a Redset file into Kafka in arrival order")
    prod.add_argument("--source", required=True, help="parquet path or https URL of Redset or generated data")
    prod.add_argument("--topic", default=settings.topic())
    prod.add_argument("--batch-size", type=int, default=10_000)
    prod.add_argument("--speed", type=_speed, default=None, help="time-scale factor, or 'max' (default)")
    prod.add_argument("--limit", type=int, default=None)
    prod.add_argument("--partitions", type=int, default=3)
    prod.add_argument(
        "--full-speed-hours", type=float, default=0.0, help="replay the first H hours of data without pacing"
    )
    prod.set_defaults(func=cmd_produce)

    demo = sub.add_parser(
        "demo", parents=[common], help="broker, Dagster, replay, dashboards and docs, all on 127.0.0.1"
    )
    demo.add_argument("--source", default=None, help="Redset parquet path or URL (default: generated rows)")
    demo.add_argument("--rows", type=int, default=1_000_000)
    demo.add_argument("--speed", type=_speed, default=6480.0)
    demo.set_defaults(func=cmd_demo)

    live = sub.add_parser(
        "live", parents=[common], help="live mode: consume, build and publish in cycles until Ctrl-C or SIGTERM"
    )
    live.add_argument("--max-cycles", type=int, default=None, help="stop after this many cycles (default: never)")
    live.set_defaults(func=cmd_live)

    from pipeline_assets.cli import metrics

    metrics.add_parser(sub, parents=[common])
    return parser


def _configure_logging(verbose: bool) -> None:
    """librdkafka logs every refused connection; without -v the project's own error says it once."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(name)s: %(message)s")
    LIBRDKAFKA_LOG.setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)  # above any level it logs at


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
