-- Per instance and ISO week (Monday first): how far its query-type mix and its scan-size buckets
-- moved from the week before, as Jensen-Shannon distances (base 2, 0 = same mix, 1 = disjoint).
-- All-time: the week grid and the previous week need every date; the counts come from the small
-- daily table hourly_workload_mix, so a rebuild never rescans clean_queries.

with mix as (

    select
        deployment,
        instance_id,
        cast(date_trunc('week', arrival_date) as date) as week_start,
        query_type,
        scan_bucket,
        queries
    from {{ ref('hourly_workload_mix') }}

),

totals as (

    select deployment, instance_id, week_start, cast(sum(queries) as bigint) as queries
    from mix
    group by all

),

weeks as (

    -- Every week from the instance's first week with queries to its last, empty weeks included.
    select deployment, instance_id, cast(unnest(generate_series(first_week, last_week, interval 7 day)) as date) as week_start
    from (
        select deployment, instance_id, min(week_start) as first_week, max(week_start) as last_week
        from totals
        group by deployment, instance_id
    )

),

shares as (

    -- One row per (instance, week, dimension, category seen that week), with its share.
    select deployment, instance_id, week_start, dimension, category, sum(counted.n) / any_value(totals.queries) as share
    from (
        select deployment, instance_id, week_start, 'query_type' as dimension, query_type as category, queries as n from mix
        union all
        select deployment, instance_id, week_start, 'scan_bucket' as dimension, scan_bucket as category, queries as n from mix
    ) as counted
    join totals using (deployment, instance_id, week_start)
    group by all

),

pairs as (

    -- Weeks that can be compared: the week and the week before both had queries.
    select cur.deployment, cur.instance_id, cur.week_start
    from totals as cur
    join totals as prev
        on cur.deployment = prev.deployment
        and cur.instance_id = prev.instance_id
        and cur.week_start = prev.week_start + 7

),

compared as (

    -- Every category seen in a week or in the week before: p is its share this week, q the week
    -- before (0 when absent, so a new or vanished category counts in full).
    select
        coalesce(cur.deployment, prev.deployment) as deployment,
        coalesce(cur.instance_id, prev.instance_id) as instance_id,
        coalesce(cur.week_start, prev.week_start + 7) as week_start,
        coalesce(cur.dimension, prev.dimension) as dimension,
        coalesce(cur.category, prev.category) as category,
        coalesce(cur.share, 0) as p,
        coalesce(prev.share, 0) as q
    from shares as cur
    full join shares as prev
        on cur.deployment = prev.deployment
        and cur.instance_id = prev.instance_id
        and cur.dimension = prev.dimension
        and cur.category = prev.category
        and cur.week_start = prev.week_start + 7

),

distances as (

    -- JS divergence = (KL(P||M) + KL(Q||M)) / 2 with M = (P + Q) / 2; a 0 share adds nothing
    -- (0 log 0 = 0). The distance is its square root, clamped against rounding to [0, 1]. The
    -- category whose share moved most is named, ties broken by name.
    select
        deployment,
        instance_id,
        week_start,
        dimension,
        least(1.0, sqrt(greatest(0.0, 0.5 * sum(
            case when p > 0 then p * log2(2 * p / (p + q)) else 0 end
            + case when q > 0 then q * log2(2 * q / (p + q)) else 0 end
        )))) as js_distance,
        first(category order by abs(p - q) desc, category) as top_category,
        first(p - q order by abs(p - q) desc, category) as top_change
    from compared
    semi join pairs using (deployment, instance_id, week_start)
    group by all

)

select
    weeks.deployment,
    weeks.instance_id,
    weeks.week_start,
    weeks.week_start - 7 as previous_week_start,
    coalesce(this_week.queries, 0) as queries,
    coalesce(last_week.queries, 0) as previous_queries,
    types.js_distance as query_type_js_distance,
    types.top_category as top_changed_query_type,
    types.top_change as top_changed_query_type_share_change,
    scans.js_distance as scan_bucket_js_distance,
    scans.top_category as top_changed_scan_bucket,
    scans.top_change as top_changed_scan_bucket_share_change
from weeks
left join totals as this_week
    on this_week.deployment = weeks.deployment
    and this_week.instance_id = weeks.instance_id
    and this_week.week_start = weeks.week_start
left join totals as last_week
    on last_week.deployment = weeks.deployment
    and last_week.instance_id = weeks.instance_id
    and last_week.week_start = weeks.week_start - 7
left join distances as types
    on types.deployment = weeks.deployment
    and types.instance_id = weeks.instance_id
    and types.week_start = weeks.week_start
    and types.dimension = 'query_type'
left join distances as scans
    on scans.deployment = weeks.deployment
    and scans.instance_id = weeks.instance_id
    and scans.week_start = weeks.week_start
    and scans.dimension = 'scan_bucket'
