"""The `redset` command: everything that is not a Dagster job.

One module per command group (main.py assembles them). May import: any stage, inside a command,
so that `redset kafka status` does not pay for pandas.

    redset generate --rows N --seed S --out PATH
    redset kafka start|stop|status|fetch
    redset spark start|stop|status
    redset produce --source PATH|URL [--speed FACTOR|max]
    redset demo
    redset live        live mode without Dagster's daemon: Kafka -> raw -> dbt -> snapshot, in cycles
    redset metrics     the batch path's Prometheus metrics on 127.0.0.1:9108 (REDSET_METRICS_PORT)
    redset dead-letters list|show|replay   the messages that could not be parsed (bytes escaped); send them again
    redset -v ...      also show librdkafka's own log lines (each refused connection, retries)
"""
