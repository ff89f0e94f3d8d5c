-- How concentrated execution time is: the share of it that comes from the top 1% of queries,
-- users and tables, per instance, per deployment and over the fleet, over all time. A query's
-- execution time counts in full for every table it reads. Rebuilt whole: the top 1% of all time
-- is not a sum of daily tops. The user and table totals are sums of the small daily tables
-- (daily_user_activity, daily_table_usage); only the queries are read one by one.

with queries as (

    -- A missing execution time counts as 0 ms (the query is still an entity).
    select deployment, instance_id, query_id, coalesce(execution_duration_ms, 0) as execution_ms
    from {{ ref('clean_queries') }}

),

entities as (

    -- One row per entity with its execution ms. User and table ids are unique within an instance
    -- only, so an entity is always (deployment, instance_id, id).
    select deployment, instance_id, 'query' as entity, query_id as entity_id, execution_ms
    from queries
    union all
    -- Queries without a user_id cannot be credited to a user and take no part in the user rows.
    select deployment, instance_id, 'user' as entity, user_id as entity_id, sum(execution_ms) as execution_ms
    from {{ ref('daily_user_activity') }}
    where user_id is not null
    group by all
    union all
    -- Queries reading no table take no part in the table rows.
    select deployment, instance_id, 'table' as entity, table_id as entity_id, sum(read_execution_ms) as execution_ms
    from {{ ref('daily_table_usage') }}
    where reads > 0
    group by all

),

scopes as (

    -- Per scope and entity kind: how many entities, how many make the top 1%, their total time,
    -- and a floor under the top 1%: the 98th percentile leaves at least 2% of the entities (and
    -- at least one) at or above it, never fewer than ceil(1%), so only those need ranking.
    select
        case grouping(deployment, instance_id) when 0 then 'instance' when 1 then 'deployment' else 'fleet' end as scope,
        deployment,
        instance_id,
        entity,
        count(*) as entities,
        cast(ceil(count(*) / 100) as bigint) as top_entities,
        sum(execution_ms) as execution_ms,
        quantile_disc(execution_ms, 0.98) as candidate_floor
    from entities
    group by grouping sets ((deployment, instance_id, entity), (deployment, entity), (entity))

),

candidates as (

    -- The entities at or above their scope's floor, one equi-join per scope kind.
    select scopes.scope, scopes.deployment, scopes.instance_id, scopes.entity, scopes.top_entities, entities.execution_ms
    from scopes
    join entities
        on entities.entity = scopes.entity
        and entities.deployment = scopes.deployment
        and entities.instance_id = scopes.instance_id
    where scopes.scope = 'instance' and entities.execution_ms >= scopes.candidate_floor
    union all
    select scopes.scope, scopes.deployment, scopes.instance_id, scopes.entity, scopes.top_entities, entities.execution_ms
    from scopes
    join entities
        on entities.entity = scopes.entity
        and entities.deployment = scopes.deployment
    where scopes.scope = 'deployment' and entities.execution_ms >= scopes.candidate_floor
    union all
    select scopes.scope, scopes.deployment, scopes.instance_id, scopes.entity, scopes.top_entities, entities.execution_ms
    from scopes
    join entities
        on entities.entity = scopes.entity
    where scopes.scope = 'fleet' and entities.execution_ms >= scopes.candidate_floor

),

top as (

    -- Ties at the cut do not matter: the top k values sum to the same whichever tied entity is taken.
    select scope, deployment, instance_id, entity, sum(execution_ms) as execution_ms
    from (
        select candidates.*,
            row_number() over (
                partition by scope, deployment, instance_id, entity
                order by execution_ms desc
            ) as position
        from candidates
    )
    where position <= top_entities
    group by all

)

select
    scopes.scope,
    scopes.deployment,
    scopes.instance_id,
    scopes.entity,
    scopes.entities,
    scopes.top_entities,
    scopes.execution_ms / 3600000 as exec_hours,
    top.execution_ms / 3600000 as top_exec_hours,
    top.execution_ms / nullif(scopes.execution_ms, 0) as top_share
from scopes
join top
    on top.scope = scopes.scope
    and top.entity = scopes.entity
    and top.deployment is not distinct from scopes.deployment
    and top.instance_id is not distinct from scopes.instance_id
