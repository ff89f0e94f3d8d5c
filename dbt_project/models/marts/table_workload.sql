-- Per table: how it is used. A table is "analytical" when selects make up more than 80% of the
-- selects plus updates/deletes touching it (the original expert view), and for the selects that
-- read it, how stale the data was (time since the last ingest) and how soon it changed.

with gaps as (

    select * from {{ ref('table_ingest_gaps') }}

),

counts as (

    -- Sums of the small daily table, not a scan of every table access.
    select
        deployment,
        instance_id,
        table_id,
        cast(sum(selects) as bigint) as selects,
        cast(sum(update_deletes) as bigint) as update_deletes,
        cast(sum(ingests) as bigint) as ingests
    from {{ ref('daily_table_usage') }}
    group by deployment, instance_id, table_id

),

staleness as (

    select
        deployment,
        instance_id,
        table_id,
        avg(seconds_since_last_ingest) as avg_s_since_last_ingest,
        median(seconds_since_last_ingest) as median_s_since_last_ingest,
        avg(seconds_until_next_ingest) as avg_s_until_next_ingest,
        median(seconds_until_next_ingest) as median_s_until_next_ingest
    from gaps
    group by deployment, instance_id, table_id

)

select
    counts.deployment,
    counts.instance_id,
    counts.table_id,
    counts.selects,
    counts.update_deletes,
    counts.ingests,
    counts.selects / nullif(counts.selects + counts.update_deletes, 0) as select_share,
    coalesce(counts.selects / nullif(counts.selects + counts.update_deletes, 0) > 0.8, false) as analytical,
    staleness.avg_s_since_last_ingest,
    staleness.median_s_since_last_ingest,
    staleness.avg_s_until_next_ingest,
    staleness.median_s_until_next_ingest
from counts
left join staleness
    on counts.deployment = staleness.deployment
    and counts.instance_id = staleness.instance_id
    and counts.table_id = staleness.table_id
