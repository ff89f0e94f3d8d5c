"""Live mode: one long-lived consume -> warm dbt -> publish loop, and its own metrics. May import:
monitoring/, raw/dump/, kafka/, warehouse/, serving/, runtime/ and the shared modules."""
