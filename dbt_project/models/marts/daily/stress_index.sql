-- Per instance and minute with queries: average execution over the trailing 15 minutes against the
-- trailing 24 hours. Time-range window frames replace the original's exponential averages, which
-- had to run row by row. A partition reads one extra day of clean rows before its window, so its
-- first minutes see a full 24 hours and match a full rebuild.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date', lookback_days=1) }}

),

minutes as (

    select
        deployment,
        instance_id,
        date_trunc('minute', arrival_timestamp) as minute,
        count(*) as queries,
        sum(execution_duration_ms) as execution_ms,
        count(execution_duration_ms) as executions,
        coalesce(sum(mbytes_spilled), 0) as mbytes_spilled
    from queries
    group by deployment, instance_id, date_trunc('minute', arrival_timestamp)

),

windowed as (

    -- A frame of "14 minutes preceding" holds the minute itself and the 14 before it: the 15
    -- minutes of arrivals ending with this minute. Likewise 1439 minutes for 24 hours.
    select
        deployment,
        instance_id,
        minute,
        cast(minute as date) as arrival_date,
        queries,
        sum(execution_ms) over last_15m / nullif(sum(executions) over last_15m, 0) as avg_exec_15m_ms,
        sum(execution_ms) over last_24h / nullif(sum(executions) over last_24h, 0) as avg_exec_24h_ms,
        sum(mbytes_spilled) over last_15m as spilled_mb_15m
    from minutes
    window
        last_15m as (
            partition by deployment, instance_id order by minute
            range between interval 14 minutes preceding and current row
        ),
        last_24h as (
            partition by deployment, instance_id order by minute
            range between interval 1439 minutes preceding and current row
        )

)

select
    deployment,
    instance_id,
    minute,
    arrival_date,
    queries,
    avg_exec_15m_ms,
    avg_exec_24h_ms,
    avg_exec_15m_ms / nullif(avg_exec_24h_ms, 0) as stress_index,
    spilled_mb_15m
from windowed
where {{ partition_window('arrival_date') }}
