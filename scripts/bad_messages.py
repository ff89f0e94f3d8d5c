"""Bad Kafka messages of every kind the pipeline must survive, for an independent producer (kcat).

Writes the messages to stdout, separated by the byte 0x1e, and the expected outcome of each
to stderr. With the broker of `make demo` up:

    .venv/bin/python scripts/bad_messages.py > /tmp/bad.bin
    kcat -b 127.0.0.1:9092 -P -t redset.queries -D '\\x1e' -X message.max.bytes=8388608 < /tmp/bad.bin

(kcat splits standard input at the delimiter; a file named on its command line would be one
message.) Dead letters are under
data/dead_letters/, quarantined rows in the warehouse's quarantine_queries, and the
"every offset has one outcome" check counts each outcome.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

DELIMITER = b"\x1e"


def valid(query_id: int, at: str, /, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "deployment": "provisioned",
        "instance_id": 7,
        "cluster_size": 4.0,
        "user_id": 3,
        "database_id": 1,
        "query_id": query_id,
        "arrival_timestamp": at,
        "compile_duration_ms": 12,
        "queue_duration_ms": 0,
        "execution_duration_ms": 340,
        "feature_fingerprint": "badmsg-demo",
        "was_aborted": False,
        "was_cached": False,
        "cache_source_query_id": None,
        "query_type": "select",
        "num_permanent_tables_accessed": 1,
        "num_external_tables_accessed": 0,
        "num_system_tables_accessed": 0,
        "read_table_ids": "5",
        "write_table_ids": None,
        "mbytes_scanned": 10.0,
        "mbytes_spilled": 0.0,
        "num_joins": 0,
        "num_scans": 1,
        "num_aggregations": 0,
    }
    row.update(changes)
    return row


def messages(at: str, base: int) -> list[tuple[str, bytes]]:
    """(expected outcome, message bytes)."""
    ids = iter(range(base, base + 1000))

    def js(**changes: object) -> bytes:
        return json.dumps(valid(next(ids), at, **changes)).encode()

    good = js()
    without_type = valid(next(ids), at)
    del without_type["query_type"]
    noise = bytes(b for b in random.Random(7).randbytes(300) if b != DELIMITER[0])
    return [
        ("clean", good),
        ("duplicate delivery (the same message again)", good),
        ("clean", js(query_type="copy", write_table_ids="5", read_table_ids=None)),
        ("dead letter: not_utf8", js()[:-1] + b', "x": "\xff\xfe"}'),
        ("dead letter: bad_json", b'{"query_id": 1, "instance_id": '),
        ("dead letter: not_object", b"[1, 2, 3]"),
        ("dead letter: duplicate_field", js()[:-1] + b', "query_id": 2}'),
        ("dead letter: missing_field query_type", json.dumps(without_type).encode()),
        ("dead letter: null_field instance_id", js(instance_id=None)),
        ("dead letter: empty_field deployment", js(deployment="  ")),
        ("dead letter: wrong_type instance_id", js(instance_id="seven")),
        ("dead letter: out_of_range query_id", js(query_id=2**70)),
        ("dead letter: bad_timestamp", js(arrival_timestamp="2024-13-45T99:00:00")),
        ("dead letter: too_deep (100,000 nested arrays)", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("dead letter: oversized (1.5 MiB)", js(feature_fingerprint="x" * (3 << 19))),
        ("dead letter: a 5000-digit integer", js().replace(b'"num_joins": 0', b'"num_joins": ' + b"9" * 5000)),
        ("dead letter: 1e400 (beyond float64)", js().replace(b'"mbytes_scanned": 10.0', b'"mbytes_scanned": 1e400')),
        ("dead letter: lone surrogate", js().replace(b'"badmsg-demo"', b'"\\ud800"')),
        ("dead letter: random bytes", noise),
        ("quarantined: negative_duration", js(execution_duration_ms=-5)),
        ("quarantined: arrival_out_of_span", js(arrival_timestamp="2019-01-01T00:00:00")),
        ("quarantined: unknown_query_type", js(query_type="merge")),
        ("quarantined: cached_without_source", js(was_cached=True)),
        ("quarantined: implausible_value: mbytes_scanned", js(mbytes_scanned=1e30)),
        ("quarantined: implausible_value: execution_duration_ms", js(execution_duration_ms=40 * 86_400_000)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", default="2024-03-01T12:00:00", help="arrival timestamp of the messages")
    parser.add_argument("--query-id-base", type=int, default=9_000_000_000)
    args = parser.parse_args()
    batch = messages(args.at, args.query_id_base)
    sys.stdout.buffer.write(DELIMITER.join(value for _, value in batch))
    for i, (outcome, value) in enumerate(batch):
        print(f"{i:3d} {len(value):>9,} B  {outcome}", file=sys.stderr)


if __name__ == "__main__":
    main()
