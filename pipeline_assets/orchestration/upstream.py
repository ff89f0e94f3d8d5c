"""What feeds `raw_queries` from outside Dagster: the source file and the Kafka topic.

Nothing in this code location materializes them (`redset produce` replays the file into the
topic), so they are external assets: they put source -> topic -> raw -> marts -> snapshot in
the lineage graph.
"""

import dagster as dg

from pipeline_assets import settings

redset_source = dg.AssetSpec(
    key="redset_source",
    group_name="source",
    kinds={"parquet"},
    description=(
        "The Redset query log replayed into Kafka: a Redset Parquet file or URL, or the seeded "
        "synthetic rows of `redset generate` (data/synthetic.parquet by default)."
    ),
    metadata={"default_path": dg.MetadataValue.path(str(settings.data_dir() / "synthetic.parquet"))},
)

redset_kafka_topic = dg.AssetSpec(
    key="redset_kafka_topic",
    group_name="source",
    kinds={"kafka"},
    deps=[redset_source],
    description="The Kafka topic `redset produce` writes one JSON message per query to, in arrival order.",
    metadata={"topic": settings.topic()},
)
