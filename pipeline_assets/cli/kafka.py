"""`redset kafka start|stop|status|fetch`: the local single-node KRaft broker."""

from __future__ import annotations

import argparse
import sys


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


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    kafka = sub.add_parser("kafka", parents=[common], help="run the local single-node KRaft broker")
    kafka.add_argument("action", choices=["start", "stop", "status", "fetch"])
    kafka.add_argument("--port", type=int, default=None, help="listener port (default 9092 or REDSET_KAFKA_PORT)")
    kafka.set_defaults(func=cmd_kafka)
