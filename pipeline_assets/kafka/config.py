"""Client configuration from the environment.

`KAFKA_BOOTSTRAP_SERVERS` names the brokers (default 127.0.0.1:9092). Every other `KAFKA_*`
variable that names one of librdkafka's documented client properties (librdkafka_properties.py)
is handed to librdkafka with the prefix dropped and the rest matched to the property:
`KAFKA_SECURITY_PROTOCOL=SASL_SSL` becomes `security.protocol=SASL_SSL`, so the same code talks
to a secured cluster.

Any other `KAFKA_*` variable is ignored, with one warning line naming them all: a broker's own
settings (KAFKA_LISTENERS, KAFKA_NODE_ID in a Kafka container) would make librdkafka refuse
the client. Variables that Kafka's own shell scripts read (KAFKA_HOME, KAFKA_OPTS,
KAFKA_HEAP_OPTS, ...) are skipped without a warning, so a machine with a Kafka install stays quiet.

librdkafka's own log lines (every refused connection, retries) go to the Python logger
`LIBRDKAFKA_LOG` for clients made with `logger=LIBRDKAFKA_LOG`; `redset -v` shows them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from pipeline_assets.kafka.librdkafka_properties import CLIENT_PROPERTIES

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# Given to a client, it receives librdkafka's logs, on the client's poll() only.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
log = logging.getLogger(__name__)

PREFIX = "KAFKA_"
# KAFKA_<NAME> -> property: `.` read as `_`, so log_level and enabled_events match too.
_BY_VARIABLE = {PREFIX + name.upper().replace(".", "_"): name for name in CLIENT_PROPERTIES}
# Read by bin/kafka-*.sh of a Kafka install, never by clients.
_KAFKA_SCRIPT_VARIABLES = frozenset({"KAFKA_HOME", "KAFKA_DEBUG", "KAFKA_CLUSTER_ID", "KAFKA_VERSION"})
_warned: set[tuple[str, ...]] = set()


def _is_script_variable(name: str) -> bool:
    return name in _KAFKA_SCRIPT_VARIABLES or name.endswith("_OPTS")  # KAFKA_OPTS, KAFKA_HEAP_OPTS, ...


def client_settings(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """(librdkafka properties from env's non-empty `KAFKA_*` client settings, the `KAFKA_*`
    variables ignored, sorted). KAFKA_BOOTSTRAP_SERVERS and the scripts' variables are neither."""
    config: dict[str, str] = {}
    ignored: list[str] = []
    for name, value in env.items():
        if not name.startswith(PREFIX) or name == "KAFKA_BOOTSTRAP_SERVERS" or _is_script_variable(name):
            continue
        if name not in _BY_VARIABLE:
            ignored.append(name)
        elif value != "":
            config[_BY_VARIABLE[name]] = value
    return config, sorted(ignored)


def ignored_warning(ignored: list[str]) -> str:
    return (
        f"ignoring {', '.join(ignored)}: not librdkafka client settings (a broker's own settings?); "
        "see pipeline_assets/kafka/librdkafka_properties.py"
    )


def warn_ignored(ignored: list[str]) -> None:
    """The warning line of ignored_warning, once per process for each set (not once per client)."""
    if ignored and tuple(ignored) not in _warned:
        _warned.add(tuple(ignored))
        log.warning(ignored_warning(ignored))


def client_config(env: Mapping[str, str] | None = None, **overrides: object) -> dict[str, object]:
    env = os.environ if env is None else env
    settings, ignored = client_settings(env)
    warn_ignored(ignored)
    config: dict[str, object] = {"bootstrap.servers": env.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP}
    config.update(settings)
    config.update(overrides)
    return config
