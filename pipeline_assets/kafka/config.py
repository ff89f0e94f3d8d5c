"""Client configuration from the environment.

`KAFKA_BOOTSTRAP_SERVERS` names the brokers (default 127.0.0.1:9092). Every other `KAFKA_*`
variable is handed to librdkafka with the prefix dropped, lower-cased and `_` turned into `.`:
`KAFKA_SECURITY_PROTOCOL=SASL_SSL` becomes `security.protocol=SASL_SSL`, so the same code talks
to a secured cluster.

Variables that Kafka's own shell scripts read (KAFKA_HOME, KAFKA_OPTS, KAFKA_HEAP_OPTS, ...) are
not client settings and are skipped, so a machine with a Kafka install still works.

librdkafka's own log lines (every refused connection, retries) go to the Python logger
`LIBRDKAFKA_LOG` for clients made with `logger=LIBRDKAFKA_LOG`; `redset -v` shows them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# Given to a client, it receives librdkafka's logs, on the client's poll() only.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")

# Read by bin/kafka-*.sh of a Kafka install, never by clients.
_KAFKA_SCRIPT_VARIABLES = frozenset({"KAFKA_HOME", "KAFKA_DEBUG", "KAFKA_CLUSTER_ID", "KAFKA_VERSION"})


def _is_client_setting(name: str) -> bool:
    return (
        name.startswith("KAFKA_")
        and name != "KAFKA_BOOTSTRAP_SERVERS"
        and name not in _KAFKA_SCRIPT_VARIABLES
        and not name.endswith("_OPTS")  # KAFKA_OPTS, KAFKA_HEAP_OPTS, KAFKA_JMX_OPTS, ...
    )


def client_config(env: Mapping[str, str] | None = None, **overrides: object) -> dict[str, object]:
    env = os.environ if env is None else env
    config: dict[str, object] = {"bootstrap.servers": env.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP}
    for name, value in env.items():
        if _is_client_setting(name) and value != "":
            config[name[len("KAFKA_"):].lower().replace("_", ".")] = value
    config.update(overrides)
    return config
