"""A broker home's configuration and storage: server.properties, log4j2.properties, the KRaft cluster
id, and the one-time format of the log dirs."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from pipeline_assets.kafka.jars import BrokerError, java_cmd


def cluster_id(home: Path) -> str:
    path = home / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    while True:
        # Kafka's Uuid text form: URL-safe base64 of 16 random bytes, no padding, not starting with "-".
        new_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not new_id.startswith("-"):
            break
    path.write_text(new_id + "\n")
    return new_id


def server_properties(home: Path, port: int, controller_port: int) -> str:
    # Settings for one laptop: a single replica of everything, topics created on purpose only.
    return f"""\
# Written by pipeline_assets/kafka/broker_config.py on every start; edit that file, not this one.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={home / "data"}

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Above the raw dump's REDSET_MAX_MESSAGE_BYTES (1 MiB), so an oversized message reaches the dump and
# becomes a dead letter there, where it is counted, instead of being refused to its producer.
message.max.bytes=8388608

# Keep a month of replay (by the time a message arrived at the broker) and at most 1 GB segments.
log.retention.hours=720
log.retention.bytes=-1
log.segment.bytes=1073741824

num.network.threads=2
num.io.threads=4
"""


def log4j_properties(home: Path) -> str:
    logs = home / "logs"
    return f"""\
# Written by pipeline_assets/kafka/broker_config.py on every start.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs / "server.log"}
appender.file.filePattern = {logs / "server.log.%i"}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def format_storage(java: str, home: Path) -> None:
    """Format the log dirs once; a formatted home keeps its topics across restarts."""
    if (home / "data" / "meta.properties").exists():
        return
    cmd = java_cmd(java, home, "256m", short_lived=True) + [
        "kafka.tools.StorageTool", "format", "--ignore-formatted",
        "-t", cluster_id(home), "-c", str(home / "config" / "server.properties"),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerError(f"formatting {home / 'data'} failed:\n{(result.stdout + result.stderr).strip()[-3000:]}")
