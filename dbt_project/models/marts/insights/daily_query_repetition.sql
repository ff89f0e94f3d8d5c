-- Per instance and arrival date: how many queries repeat an earlier one (Redbench's key), how
-- many the result cache answered, and what a cache that answered every safe repeat would have
-- saved. query_repeats recomputes the dates after a partition window too, so this model does the
-- same: the window's dates and every later date are replaced (partition_window_and_keys).
{{ config(
    materialized='incremental',
    incremental_strategy='partition_window_and_keys',
    unique_key=['deployment', 'instance_id', 'arrival_date'],
    on_schema_change='fail',
    tags=['daily'],
) }}

with repeats as (

    select * from {{ ref('query_repeats') }}
    where {{ from_partition_window('arrival_date') }}

),

counts as (

    select
        deployment,
        instance_id,
        arrival_date,
        {{ repetition_counts() }}
    from repeats
    group by deployment, instance_id, arrival_date

)

select
    deployment,
    instance_id,
    arrival_date,
    {{ repetition_shares() }}
from counts
