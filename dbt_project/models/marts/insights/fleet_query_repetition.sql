-- Repetition and cache opportunity over all dates: one row per deployment and one for the whole
-- fleet (deployment 'all'). Read from the per-query rows, so the median gap is exact.

with repeats as (

    select * from {{ ref('query_repeats') }}

),

counts as (

    select
        coalesce(deployment, 'all') as deployment,
        count(distinct (deployment, instance_id)) as instances,
        {{ repetition_counts() }}
    from repeats
    group by grouping sets ((deployment), ())

)

select
    deployment,
    instances,
    {{ repetition_shares() }}
from counts
