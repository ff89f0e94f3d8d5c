"""Watching the pipeline from outside: Prometheus metrics read from stored state (collector and exporter),
freshness and the stale-snapshot alert, anomaly alerts. May import: serving/, warehouse/, raw/, kafka/,
runtime/ and the shared modules."""
