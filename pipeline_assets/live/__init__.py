"""Live mode: one long-lived consume -> warm dbt -> publish loop. May import: raw/dump/, kafka/,
warehouse/, serving/, runtime/ and the shared modules."""
