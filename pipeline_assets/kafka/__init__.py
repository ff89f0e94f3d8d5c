"""The Kafka side: the local KRaft broker, client configuration from KAFKA_*, consumer offsets and lag,
the replay producer. May import: source/, runtime/ and the shared modules."""
