"""A topic's id: the UUID Kafka gives a topic when it is created, new after a delete and re-create
or a wiped broker, even when the name stays. The raw dump names its files with it."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient


def topic_id(client_config: dict[str, object], topic: str, timeout: float = 30.0) -> str | None:
    """The topic's id as kafka-topics.sh prints it (22 characters of URL-safe base64); None when the topic
    does not exist (the dump then says so itself)."""
    admin = AdminClient(dict(client_config))
    future = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout)[topic]
    try:
        description = future.result(timeout=timeout)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        raise
    # librdkafka prints standard base64 ('+', '/'); Kafka's own tools, and a file name, want the URL-safe form.
    return str(description.topic_id).replace("+", "-").replace("/", "_").rstrip("=")
