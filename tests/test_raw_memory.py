"""Memory bounded by bytes, not message count (pipeline_assets/raw/dump/consume.py, chunk.py,
dead_letter_stream.py).

A backlog of 1,100 messages of 1 MiB each (1.1 GiB, over the dump's 1 MiB limit, so each is an
`oversized` dead letter that keeps all its bytes) goes through the dump in a child process of
its own, with the default settings. Chunks close at REDSET_RAW_CHUNK_BYTES and dead letters
stream to their file, so the child's peak RSS stays within the same 1 GiB as a backlog of ordinary rows. Held by count (25,000
messages a chunk) and until the checkpoint, the whole backlog would sit in memory twice.
Uncompressed on purpose: librdkafka bounds its prefetch by the bytes fetched, so a compressed
topic of very compressible values can prefetch far more than that once decompressed (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from raw_support import dead_rows, group_offsets, high_watermarks, raw_rows, use_private_dirs

from pipeline_assets import settings
from pipeline_assets.kafka.producer import produce_waiting

MESSAGES = 1_100
VALUE = b'{"padding":"' + b"x" * (1 << 20) + b'"}'  # 1 MiB and a little: oversized
PEAK_LIMIT = 1 << 30
# The dump as the raw_queries asset runs it, in a process whose peak RSS is its own: it reports
# VmHWM itself (wait4's ru_maxrss would carry this test process's peak over, from the fork).
CHILD = """
import json, sys, uuid
from pathlib import Path
from pipeline_assets import settings
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw.dump.consume import CONSUMER_TUNING, dump
from pipeline_assets.raw.dump.options import DumpOptions
options = DumpOptions(topic=settings.topic(), group_id=settings.consumer_group(), raw_dir=settings.raw_dir(),
                      dead_letter_dir=settings.dead_letter_dir(), batch_id=uuid.uuid4().hex, max_messages=10**7)
consumer = KafkaResource().consumer(options.group_id, **CONSUMER_TUNING)
try:
    stats = dump(consumer, options, log=lambda m: None)
finally:
    consumer.close()
peak = next(int(l.split()[1]) * 1024 for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(json.dumps({"messages": stats.messages, "commits": stats.commits, "peak": peak}))
"""


@pytest.mark.kafka
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_large_messages_keep_the_dump_within_1_gib(
    kafka_broker: str, kafka_topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = use_private_dirs(monkeypatch, tmp_path / "data", kafka_topic)
    producer = Producer(
        {"bootstrap.servers": kafka_broker, "compression.type": "none", "message.max.bytes": 8 << 20,
         "linger.ms": 20, "queue.buffering.max.kbytes": 256 << 10}
    )  # fmt: skip
    for i in range(MESSAGES):
        produce_waiting(producer, kafka_topic, VALUE, str(i).encode(), partition=i % 3)
        producer.poll(0)
    assert producer.flush(60) == 0
    del producer

    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=85, env=os.environ)
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"dump peak RSS {result['peak'] >> 20} MiB, {result['commits']} commit(s)")
    assert result["messages"] == MESSAGES
    assert result["peak"] < PEAK_LIMIT, f"peak RSS {result['peak'] >> 20} MiB"

    # Every message is a dead letter with all its bytes, and the group committed them all.
    dead = dead_rows(["kafka_partition", "kafka_offset", "reason"])
    assert dead.num_rows == MESSAGES and raw_rows(["kafka_offset"]).num_rows == 0
    assert {r.split(":", 1)[0] for r in dead["reason"].to_pylist()} == {"oversized"}
    assert {(p, o) for p, o in zip(dead["kafka_partition"].to_pylist(), dead["kafka_offset"].to_pylist())} == {
        (p, o) for p in range(3) for o in range(MESSAGES // 3 + (p < MESSAGES % 3))
    }
    files = sorted(settings.dead_letter_dir().glob("*.parquet"))
    assert [f.name for f in files] == [f"{kafka_topic}-p{p}-o0-{n - 1}.parquet" for p, n in ((0, 367), (1, 367), (2, 366))]
    sizes = pc.binary_length(pq.read_table(files[0], columns=["raw_value"])["raw_value"])
    assert pc.min(sizes).as_py() == len(VALUE)  # no byte dropped
    assert {o.partition: o.committed for o in group_offsets(kafka_broker, kafka_topic, group)} == high_watermarks(
        kafka_broker, kafka_topic
    )
