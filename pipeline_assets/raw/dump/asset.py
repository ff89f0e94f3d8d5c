"""The `raw_queries` asset: every new message of the topic, into the raw zone, exactly once in effect.

A run consumes the group's new messages (dump/consume.py), writes them as typed rows and dead
letters, and makes the files durable before it commits their offsets (checkpoint.py). A crash
between the two re-delivers those messages to the next run, which writes them again. Downstream
(dbt staging, the checks) dedupes on (topic, partition, offset), so the effect is exactly once.
The consumer is assigned its partitions (no group rebalance), so only one dump should run at a
time: the lag sensor starts one only when none is in flight. REDSET_RAW_CONSUMERS=N splits a run
over N consumer processes of the same group (dump/parallel.py).
"""

from typing import Any

import dagster as dg

from pipeline_assets import settings
from pipeline_assets.kafka import offsets, topic_ids
from pipeline_assets.kafka.closing import close_within
from pipeline_assets.kafka.resource import KafkaResource
from pipeline_assets.raw import zone
from pipeline_assets.raw.dump import isolation
from pipeline_assets.raw.dump import parallel as parallel_dump
from pipeline_assets.raw.dump.consume import CONSUMER_TUNING, DumpStalled, dump
from pipeline_assets.raw.dump.generation import TopicReset
from pipeline_assets.raw.dump.options import DumpOptions, DumpStats, zone_folders
from pipeline_assets.runtime.runs import run_in_flight
from pipeline_assets.storage.location import StorageError


class RawDumpConfig(dg.Config):
    """Run config of `raw_queries`; every field has a sensible default."""

    max_messages: int | None = None  # default: settings.raw_max_messages() (REDSET_RAW_MAX_MESSAGES)
    chunk_size: int = 25_000
    commit_every: int = 500_000
    max_file_mb: int = zone.DEFAULT_MAX_FILE_BYTES >> 20
    idle_timeout_s: float = 120.0
    # Set by the lag sensor after repeated failures: see isolation.py (smaller chunks and commits).
    isolate_failures: bool = False
    # After a topic reset (the topic re-created, the broker wiped): start a new generation instead
    # of stopping (dump/generation.py). For one run, set by hand.
    new_generation: bool = False


@dg.asset(
    key="raw_queries",
    group_name="raw",
    deps=["redset_kafka_topic"],  # upstream.py
    kinds={"kafka", "parquet"},
    # One dump at a time where the instance limits pools (the lag sensor also waits for it).
    pool="raw_kafka",
    description="Every Kafka message of the topic, as typed Parquet rows in the raw zone (arrival_date=...), "
    "with dead letters for messages that cannot be parsed or typed.",
)
def raw_queries(context: dg.AssetExecutionContext, config: RawDumpConfig, kafka: KafkaResource) -> dg.MaterializeResult:
    try:
        folders = zone_folders()
    except StorageError as exc:
        raise dg.Failure(description=str(exc)) from exc
    options = DumpOptions(
        topic=settings.topic(),
        group_id=settings.consumer_group(),
        **folders,  # type: ignore[arg-type]
        batch_id=context.run.run_id,
        max_messages=config.max_messages if config.max_messages is not None else settings.raw_max_messages(),
        chunk_size=config.chunk_size,
        commit_every=config.commit_every,
        max_file_bytes=config.max_file_mb << 20,
        idle_timeout_s=config.idle_timeout_s,
        topic_id=topic_ids.topic_id(kafka.client_config(), settings.topic()),
        new_generation=config.new_generation,
    )
    if config.isolate_failures:
        options = isolation.isolating(options)
    consumers = settings.raw_consumers()
    if consumers > 1:
        return _dump_in_parallel(context, options, kafka, consumers)
    consumer = kafka.consumer(options.group_id, **CONSUMER_TUNING)
    try:
        stats = dump(consumer, options, log=context.log.info)
    except offsets.TopicMissing as exc:
        raise dg.Failure(description=f"{exc}; produce to it first (`redset produce`)") from exc
    except (DumpStalled, TopicReset) as exc:
        raise dg.Failure(description=str(exc), allow_retries=not isinstance(exc, TopicReset)) from exc
    finally:
        close_within(consumer, log=context.log.info)
    return dg.MaterializeResult(metadata=dump_metadata(options, stats))


def _dump_in_parallel(
    context: dg.AssetExecutionContext, options: DumpOptions, kafka: KafkaResource, consumers: int
) -> dg.MaterializeResult:
    config = kafka.consumer_config(options.group_id, **CONSUMER_TUNING)
    try:
        stats, reports = parallel_dump.dump_in_parallel(config, options, consumers, log=context.log.info)
    except offsets.TopicMissing as exc:
        raise dg.Failure(description=f"{exc}; produce to it first (`redset produce`)") from exc
    except TopicReset as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except parallel_dump.ConsumerFailed as exc:
        raise dg.Failure(description=str(exc), metadata=dump_metadata(options, exc.stats)) from exc
    return dg.MaterializeResult(
        metadata={
            **dump_metadata(options, stats),
            "consumers": dg.MetadataValue.json([r.metadata() for r in reports]),
            "consumers_asked": dg.MetadataValue.int(consumers),
            "consumers_idle": dg.MetadataValue.int(consumers - len(reports)),
        }
    )


def dump_metadata(options: DumpOptions, stats: DumpStats) -> dict[str, Any]:
    consumed = {
        str(p): {"from": stats.first_offset[p], "to": stats.last_offset[p]} for p in sorted(stats.first_offset)
    }
    return {
        **stats.summary.metadata(),
        "messages_consumed": dg.MetadataValue.int(stats.messages),
        "offsets_consumed": dg.MetadataValue.json(consumed),
        "lag_after": dg.MetadataValue.int(sum(stats.lag_after.values())),
        "lag_after_by_partition": dg.MetadataValue.json({str(p): lag for p, lag in sorted(stats.lag_after.items())}),
        "offsets_deleted_before_read": dg.MetadataValue.json({str(p): n for p, n in stats.skipped.items()}),
        "commits": dg.MetadataValue.int(stats.commits),
        "isolate_failures": dg.MetadataValue.bool(options.isolate_failures),
        "batch_id": dg.MetadataValue.text(options.batch_id),
        "topic": dg.MetadataValue.text(options.topic),
        "topic_id": dg.MetadataValue.text(options.topic_id or ""),
        "consumer_group": dg.MetadataValue.text(options.group_id),
        "raw_dir": dg.MetadataValue.path(options.raw_url or str(options.raw_dir)),
    }


dump_kafka_job = dg.define_asset_job(
    "dump_kafka_job",
    selection=[raw_queries],
    description="Consume every new message of the topic into the raw zone (started by kafka_lag_sensor).",
    # A generous bound (run monitoring fails a run past it): a 5M-message run takes minutes.
    tags={"dagster/max_runtime": str(2 * 3600)},
)


def raw_dump_in_flight(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A queued or running run that materialises raw_queries (the sensor's job or a manual run)."""
    return run_in_flight(instance, dump_kafka_job.name, dg.AssetKey("raw_queries"))
