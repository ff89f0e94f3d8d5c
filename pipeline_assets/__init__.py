"""Redset through Kafka into a Dagster + dbt asset graph. The top-level modules (settings, schema,
durable, alerts) are shared by every stage and import no stage; each folder's docstring says what it may import."""
