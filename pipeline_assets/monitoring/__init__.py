"""Watching the pipeline from outside: freshness and the stale-snapshot alert, anomaly alerts. May
import: serving/, warehouse/, kafka/, runtime/ and the shared modules."""
