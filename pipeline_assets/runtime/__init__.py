"""What every stage uses to run: processes it starts and stops, free ports, and lookups in Dagster's run
records. May import: the shared top-level modules only."""
