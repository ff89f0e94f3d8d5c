"""`redset dead-letters list|show`: the dead-letter zone, as the dashboards' Kafka page shows it.

Bytes are printed escaped (pipeline_assets/raw/dead_letter_browser.py); `show --raw-out FILE`
writes the kept bytes as they are, to fix by hand.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("dead-letters", parents=[common], help="list and show the messages that could not be parsed")
    verbs = group.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", parents=[common], help="dead letters, newest first")
    listing.add_argument("--kind", action="append", help="only this kind (bad_json, too_deep, ...); repeatable")
    listing.add_argument("--since", type=_when, help="ingested at or after this time (ISO 8601, UTC if no zone)")
    listing.add_argument("--until", type=_when, help="ingested at or before this time")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.set_defaults(func=cmd_list)
    show = verbs.add_parser("show", parents=[common], help="one dead letter: where it came from, why, its bytes")
    show.add_argument("position", help="TOPIC:PARTITION:OFFSET, as `list` prints it")
    show.add_argument("--raw-out", type=Path, help="also write the kept bytes, unescaped, to this file")
    show.set_defaults(func=cmd_show)


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: not an ISO 8601 time such as 2024-03-01T12:00") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def cmd_list(args: argparse.Namespace) -> int:
    from pipeline_assets import settings
    from pipeline_assets.raw.dead_letter_browser import letters

    table = letters(settings.dead_letter_dir(), args.kind, args.since, args.until, args.limit).to_pylist()
    if not table:
        print(f"no dead letters in {settings.dead_letter_dir()}" + (" that match" if args.kind or args.since or args.until else ""))
        return 0
    for row in table:
        where = (f"{row['kafka_topic']}:{row['kafka_partition']}:{row['kafka_offset']}" if row["kafka_topic"] is not None
                 else f"(landing) {row['source_file']}")  # fmt: skip
        print(f"{row['ingested_at']:%Y-%m-%d %H:%M:%S}  {where}  {row['kind']}  {row['bytes']} bytes  {row['first_bytes']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipeline_assets import settings
    from pipeline_assets.raw.dead_letter_browser import Position, escaped, raw_bytes

    try:
        raw, fields = raw_bytes(settings.dead_letter_dir(), Position.parse(args.position))
    except (ValueError, KeyError) as exc:
        print(f"redset dead-letters show: {exc.args[0]}", file=sys.stderr)
        return 1
    for name, value in fields.items():
        print(f"{name}: {value}")
    print(f"bytes: {len(raw or b'')}")
    print(f"raw_value: {escaped(raw, limit=len(raw or b''))}")
    if args.raw_out:
        args.raw_out.write_bytes(raw or b"")
        print(f"wrote {len(raw or b'')} bytes to {args.raw_out}")
    return 0
