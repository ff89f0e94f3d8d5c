-- How concentrated execution time is: the share of it that comes from the top 1% of queries,
-- users and tables, per instance, per deployment and over the fleet, over all time. A query's
-- execution time counts in full for every table it reads. Rebuilt whole: the top 1% of all time
-- is not a sum of daily tops (on 1M rows the rebuild takes about a second).

with queries as (

    -- A missing execution time counts as 0 ms (the query is still an entity).
    select deployment, instance_id, query_id, user_id, coalesce(execution_duration_ms, 0) as execution_ms
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
    from queries
    where user_id is not null
    group by all
    union all
    -- Queries reading no table take no part in the table rows.
    select reads.deployment, reads.instance_id, 'table' as entity, reads.table_id as entity_id,
        sum(queries.execution_ms) as execution_ms
    from {{ ref('flattened_table_access') }} as reads
    join queries using (deployment, instance_id, query_id)
    where reads.access = 'read'
    group by all

),

scopes as (

    -- Per scope and entity kind: how many entities, how many make the top 1%, their total time,
    -- and a floor under the top 1%: the 98th percentile leaves at least 2% of the entities (and
    -- at least one) at or above it, never fewer than ceil(1%), so only those need ranking.
    select
        case {{ grouping_id(['deployment', 'instance_id']) }} when 0 then 'instance' when 1 then 'deployment' else 'fleet' end as scope,
        deployment,
        instance_id,
        entity,
        count(*) as entities,
        cast(ceil(count(*) / 100) as bigint) as top_entities,
        sum(execution_ms) as execution_ms,
        {{ quantile_disc('execution_ms', 0.98) }} as candidate_floor
    from entities
    group by grouping sets ((deployment, instance_id, entity), (deployment, entity), (entity))

),

top as (

    -- Ties at the cut do not matter: the top k values sum to the same whichever tied entity is taken.
    select scope, deployment, instance_id, entity, sum(execution_ms) as execution_ms
    from (
        select
            scopes.scope, scopes.deployment, scopes.instance_id, scopes.entity, scopes.top_entities, entities.execution_ms,
            row_number() over (
                partition by scopes.scope, scopes.deployment, scopes.instance_id, scopes.entity
                order by entities.execution_ms desc
            ) as position
        from scopes
        join entities
            on entities.entity = scopes.entity
            and (scopes.deployment is null or entities.deployment = scopes.deployment)
            and (scopes.instance_id is null or entities.instance_id = scopes.instance_id)
            and entities.execution_ms >= scopes.candidate_floor
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
