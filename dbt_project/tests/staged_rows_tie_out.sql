{{ config(meta={
    'dagster': {'ref': {'name': 'clean_queries'}},
    'description': 'Every staged row is accounted for: staged = clean + quarantined + duplicates removed, per arrival date.',
}) }}
-- Returns the arrival dates (of the partition window) where
--   staged rows != clean rows + quarantined rows + duplicate copies removed,
-- counting from stg_queries and the deliveries view, not from clean_queries' logic: the check
-- catches rows an incremental run lost or kept twice. A duplicate is a valid copy of a query that
-- is not its earliest delivery, wherever (on whichever arrival date) the earliest one is.
-- It applies the same rules (quarantine_reason()) as the models, so it cannot tell a wrong rule:
-- tests/test_dbt_models.py and test_dbt_end_to_end.py check rules.sql against the rules in pandas.

with staged as (

    select *, {{ quarantine_reason() }} as reason
    from {{ ref('stg_queries') }}
    where {{ partition_window('arrival_date') }}

),

valid as (

    select * from staged where reason is null

),

copies as (

    -- Every valid delivery of the window's queries, on any date (re-deliveries on other dates
    -- only repeat a copy and never change which one is earliest).
    select valid.* {{ star_exclude(['reason']) }}, true as in_window from valid
    {{ union_all_by_name() }}
    select deliveries.*, false as in_window
    from {{ ref('stg_query_deliveries') }} as deliveries
    semi join valid
        -- ON, not USING: Spark's deliveries.* would then list the keys first.
        on deliveries.deployment = valid.deployment and deliveries.instance_id = valid.instance_id
        and deliveries.query_id = valid.query_id
    where not ({{ partition_window('deliveries.arrival_date') }})
      and {{ quarantine_reason() }} is null

),

copied as (

    -- Only queries with more than one valid copy can have duplicates; ranking just their copies
    -- spares a sort of every row. Valid rows never have a NULL key part.
    select deployment, instance_id, query_id
    from copies
    group by deployment, instance_id, query_id
    having count(*) > 1

),

ranked as (

    select
        arrival_date,
        in_window,
        row_number() over (
            partition by deployment, instance_id, query_id
            order by {{ delivery_order() }}
        ) > 1 as is_duplicate
    from copies
    semi join copied using (deployment, instance_id, query_id)

),

staged_counts as (

    select arrival_date, count(*) as staged
    from staged
    group by arrival_date

),

duplicate_counts as (

    select arrival_date, count(*) filter (where is_duplicate) as duplicates
    from ranked
    where in_window
    group by arrival_date

),

clean_counts as (

    select arrival_date, count(*) as clean
    from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}
    group by arrival_date

),

quarantine_counts as (

    select arrival_date, count(*) as quarantined
    from {{ ref('quarantine_queries') }}
    where {{ partition_window('arrival_date') }}
    group by arrival_date

),

tie_out as (

    select
        arrival_date,
        coalesce(staged, 0) as staged,
        coalesce(clean, 0) as clean,
        coalesce(quarantined, 0) as quarantined,
        coalesce(duplicates, 0) as duplicates
    from staged_counts
    full outer join clean_counts using (arrival_date)
    full outer join quarantine_counts using (arrival_date)
    full outer join duplicate_counts using (arrival_date)

)

select * from tie_out
where staged <> clean + quarantined + duplicates
