"""Kafka -> raw zone: consume, parse, chunk, write, commit, isolate, retry (the `raw_queries` asset).
May import: raw/, kafka/, runtime/, storage/ and the shared modules."""
