"""`redset s3 start|stop|status|fetch`: the local S3-compatible server (S3Proxy)."""

from __future__ import annotations

import argparse
import sys


def cmd_s3(args: argparse.Namespace) -> int:
    from pipeline_assets.s3 import server

    try:
        if args.action == "fetch":
            server.fetch_jar()
        elif args.action == "start":
            server.start(port=args.port)
        elif args.action == "stop":
            server.stop()
        else:
            return 0 if server.status(show_secret=args.show_secret) else 3  # 3: not running
    except server.ServerError as exc:
        print(f"redset s3 {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s3 = sub.add_parser("s3", parents=[common], help="run the local S3-compatible server (S3Proxy)")
    s3.add_argument("action", choices=["start", "stop", "status", "fetch"])
    s3.add_argument("--port", type=int, default=None, help="listener port (default 9000 or REDSET_S3_PORT)")
    s3.add_argument("--show-secret", action="store_true", help="status: print AWS_SECRET_ACCESS_KEY too")
    s3.set_defaults(func=cmd_s3)
