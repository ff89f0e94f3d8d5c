"""`redset dead-letters list|show|replay`: the dead-letter zone, as the dashboards' Kafka page shows
it, and sending letters again after a fix.

Bytes are printed escaped (pipeline_assets/raw/dead_letter_browser.py); `show --raw-out FILE`
writes the kept bytes as they are, to fix by hand. `replay` produces them again to the pipeline's
topic (pipeline_assets/kafka/replay.py), as they are after a parser or rule fix, or changed by
`--edit` in $EDITOR or `--from-file F`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("dead-letters", parents=[common], help="list, show and replay the messages that could not be parsed")
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
    replay = verbs.add_parser("replay", parents=[common], help="produce dead letters again to the pipeline's topic")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--kind", action="append", help="every letter of this kind (bad_json, too_deep, ...); repeatable")
    which.add_argument("--offset", help="the one letter at TOPIC:PARTITION:OFFSET, as `list` prints it")
    change = replay.add_mutually_exclusive_group()
    change.add_argument("--edit", action="store_true", help="change the bytes in $VISUAL or $EDITOR first (one letter)")
    change.add_argument("--from-file", type=Path, help="send this file's bytes instead of the kept ones (one letter)")
    replay.set_defaults(func=cmd_replay)


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
        tries = f"  {len(row['attempts'])} attempts" if len(row["attempts"]) > 1 else ""
        print(f"{row['ingested_at']:%Y-%m-%d %H:%M:%S}  {where}  {row['kind']}  {row['bytes']} bytes{tries}  {row['first_bytes']}")
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


def cmd_replay(args: argparse.Namespace) -> int:
    from pipeline_assets import settings
    from pipeline_assets.kafka.replay import Outgoing, replay
    from pipeline_assets.raw.dead_letter_browser import Position, to_replay

    def fail(text: str) -> int:
        print(f"redset dead-letters replay: {text}", file=sys.stderr)
        return 1

    try:
        chosen = to_replay(settings.dead_letter_dir(), args.kind, Position.parse(args.offset) if args.offset else None)
    except (ValueError, KeyError) as exc:
        return fail(exc.args[0])
    if not chosen:
        return fail(f"no dead letter from Kafka in {settings.dead_letter_dir()}")
    values = [letter.value for letter in chosen]
    if args.edit or args.from_file:
        if len(chosen) != 1:
            return fail(f"--edit and --from-file change one letter; {len(chosen)} chosen: pick one with --offset")
        try:
            values = [args.from_file.read_bytes() if args.from_file else _edited(values[0])]
        except (OSError, RuntimeError) as exc:
            return fail(str(exc))
        if not values[0]:
            return fail("the new bytes are empty: nothing replayed")
    topic = settings.topic()
    outgoing = [Outgoing(str(letter.position), letter.key, value) for letter, value in zip(chosen, values, strict=True)]
    results = replay(topic, outgoing)
    for letter, value, result in zip(chosen, values, results, strict=True):
        tried = f" (attempt {letter.attempts + 1})" if letter.attempts > 1 else ""
        where = f"-> {result.position}" if result.error is None else f"NOT DELIVERED: {result.error}"
        print(f"{letter.position}  {letter.kind}  {len(value or b'')} bytes{tried}  {where}")
    failed = sum(r.error is not None for r in results)
    print(f"replayed {len(results) - failed} of {len(results)} dead letter(s) to {topic}"
          + (f"; {failed} not delivered" if failed else ""), file=sys.stderr if failed else sys.stdout)  # fmt: skip
    return 1 if failed else 0


def _edited(value: bytes | None) -> bytes:
    """The bytes after the user's editor has changed them in a temporary file."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise RuntimeError("--edit needs an editor: set $VISUAL or $EDITOR (or give the bytes with --from-file)")
    with tempfile.TemporaryDirectory(prefix="redset-replay-") as folder:
        path = Path(folder) / "letter.bin"
        path.write_bytes(value or b"")
        if subprocess.run([*shlex.split(editor), str(path)], check=False).returncode != 0:
            raise RuntimeError(f"the editor ({editor}) exited with an error: nothing replayed")
        return path.read_bytes()
