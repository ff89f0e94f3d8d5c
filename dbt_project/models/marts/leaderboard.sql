-- Every board in one long table: (board, period, rank, entity, value). A period is one arrival date
-- ('YYYY-MM-DD') or 'all'. All boards come from the small daily tables, so this rebuild is cheap.
-- Ranks are dense_rank over (value desc, then the entity's ids): the ids make every key distinct,
-- so ranks run 1, 2, 3, ... and equal values are ordered by entity id, deterministically.

with user_days as (

    select * from {{ ref('daily_user_activity') }}

),

user_periods as (

    select deployment, instance_id, user_id, cast(arrival_date as {{ dbt.type_string() }}) as period,
        queries, aborted, execution_ms, mbytes_spilled
    from user_days
    union all
    select deployment, instance_id, user_id, 'all' as period,
        sum(queries), sum(aborted), sum(execution_ms), sum(mbytes_spilled)
    from user_days
    group by deployment, instance_id, user_id

),

instance_periods as (

    select deployment, instance_id, period,
        sum(queries) as queries,
        sum(aborted) as aborted,
        sum(execution_ms) as execution_ms,
        sum(mbytes_spilled) as mbytes_spilled
    from user_periods
    group by deployment, instance_id, period

),

instance_values as (

    select 'instances_by_execution_hours' as board, period, deployment, instance_id,
        execution_ms / cast(3600000 as double) as value
    from instance_periods
    union all
    select 'instances_by_queries', period, deployment, instance_id, queries
    from instance_periods
    union all
    select 'instances_by_spilled_mb', period, deployment, instance_id, mbytes_spilled
    from instance_periods
    union all
    -- A rate over a handful of queries means nothing, so small instances are left off this board.
    select 'instances_by_abort_rate', period, deployment, instance_id, aborted / queries
    from instance_periods
    where queries >= {{ var('abort_rate_min_queries') }}

),

instance_boards as (

    select
        board,
        period,
        dense_rank() over (
            partition by board, period
            order by value desc, deployment, instance_id
        ) as rank,
        deployment || ':' || instance_id as entity,
        value,
        deployment,
        instance_id,
        cast(null as bigint) as user_id,
        cast(null as bigint) as query_id
    from instance_values

),

user_boards as (

    -- Rows without a user_id cannot be credited to anyone, so they take no place here.
    select
        'top_users_by_queries' as board,
        period,
        dense_rank() over (
            partition by period, deployment, instance_id
            order by queries desc, user_id
        ) as rank,
        'user ' || user_id || ' on ' || deployment || ':' || instance_id as entity,
        queries as value,
        deployment,
        instance_id,
        user_id,
        cast(null as bigint) as query_id
    from user_periods
    where user_id is not null
    qualify rank <= 5

),

compile_periods as (

    select cast(arrival_date as {{ dbt.type_string() }}) as period, * from {{ ref('daily_longest_compiles') }}
    union all
    select 'all' as period, * from {{ ref('daily_longest_compiles') }}

),

compile_boards as (

    select
        'longest_compiles' as board,
        period,
        dense_rank() over (
            partition by period
            order by compile_duration_ms desc, deployment, instance_id, query_id
        ) as rank,
        'query ' || query_id || ' on ' || deployment || ':' || instance_id as entity,
        compile_duration_ms as value,
        deployment,
        instance_id,
        cast(null as bigint) as user_id,
        query_id
    from compile_periods
    qualify rank <= 10

),

boards as (

    select * from instance_boards
    union all
    select * from user_boards
    union all
    select * from compile_boards

)

select
    board,
    period,
    cast(rank as integer) as rank,
    entity,
    cast(value as double) as value,
    deployment,
    instance_id,
    user_id,
    query_id
from boards
