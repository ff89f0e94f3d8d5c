"""Landing folder -> raw zone: files dropped for ingest, read, typed and written once (the
`landing_queries` asset). May import: raw/, source/, runtime/ and the shared modules."""
