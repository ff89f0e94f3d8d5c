-- Anomaly tags per instance and hour (rules, baselines and thresholds: see _insights_anomalies.yml;
-- thresholds: var `anomalies` in dbt_project.yml). Rebuilt whole: each hour's baseline is its
-- instance's trailing window, so a late hour changes the tags of the week after it.
{%- set a = var('anomalies') %}
{%- set robust_sd = 1.4826 %}

with metrics as (

    select deployment, instance_id, hour, queries, aborted, mbytes_spilled, exec_p95_ms
    from {{ ref('query_metrics') }}

),

-- query_metrics has no time totals: the queue share needs the sums (hourly_workload_mix's).
times as (

    select deployment, instance_id, hour,
        sum(queue_ms) as queue_ms,
        sum(execution_ms) as execution_ms
    from {{ ref('hourly_workload_mix') }}
    group by all

),

hourly as (

    select m.*,
        t.queue_ms / nullif(t.queue_ms + t.execution_ms, 0) as queue_share,
        ln(1 + m.exec_p95_ms) as log_p95
    from metrics as m
    left join times as t using (deployment, instance_id, hour)

),

-- The instance's previous `baseline_hours` hours with data, the current hour excluded.
baselines as (

    select *,
        count(*) over last_week as baseline_hours,
        {{ window_median('log_p95', 'last_week') }} as log_p95_median,
        {{ window_mad('log_p95', 'last_week') }} as log_p95_mad,
        {{ window_median('mbytes_spilled', 'last_week') }} as spill_median,
        {{ window_mad('mbytes_spilled', 'last_week') }} as spill_mad,
        sum(aborted) over last_week / sum(queries) over last_week as abort_rate,
        {{ window_median('queue_share', 'last_week') }} as queue_share_median
    from hourly
    window last_week as (
        partition by deployment, instance_id order by hour
        range between interval {{ a.baseline_hours }} hours preceding and interval 1 hour preceding
    )

),

limits as (

    select *,
        baseline_hours >= {{ a.min_baseline_hours }} as has_baseline,
        log_p95_median + greatest({{ a.robust_sds }} * {{ robust_sd }} * log_p95_mad, ln({{ a.exec_spike_min_ratio }})) as log_p95_limit,
        greatest({{ a.heavy_spill_min_mb }},
            coalesce(spill_median + {{ a.robust_sds }} * {{ robust_sd }} * spill_mad, 0)) as spill_limit,
        queries * abort_rate as expected_aborts
    from baselines

),

exec_spikes as (

    select deployment, instance_id, hour, 'exec_spike' as tag,
        exec_p95_ms as value,
        exp(log_p95_median) - 1 as baseline,
        exp(log_p95_limit) - 1 as threshold,
        {{ printf('p95 execution %.0f ms, trailing median %.0f ms over %d hours', ['exec_p95_ms',
            'exp(log_p95_median) - 1', 'baseline_hours']) }} as detail
    from limits
    where has_baseline and queries >= {{ a.min_queries }} and log_p95 > log_p95_limit

),

spills as (

    select deployment, instance_id, hour, 'heavy_spill' as tag,
        mbytes_spilled as value,
        spill_median as baseline,
        spill_limit as threshold,
        {{ printf('%.0f MB spilled, trailing median %.0f MB', ['mbytes_spilled', 'coalesce(spill_median, 0)']) }} as detail
    from limits
    -- No baseline needed: the floor heavy_spill_min_mb alone is a heavy spill anywhere.
    where mbytes_spilled > spill_limit

),

queue_bound as (

    select deployment, instance_id, hour, 'queue_bound' as tag,
        queue_share as value,
        queue_share_median as baseline,
        {{ a.queue_bound_share }} as threshold,
        {{ printf('%.0f %% of queue + execution time queued over %d queries', ['100 * queue_share', 'queries']) }} as detail
    from limits
    where queries >= {{ a.min_queries }} and queue_share > {{ a.queue_bound_share }}

),

abort_bursts as (

    select deployment, instance_id, hour, 'abort_burst' as tag,
        aborted as value,
        expected_aborts as baseline,
        greatest({{ a.abort_burst_min_aborts }}, expected_aborts + {{ a.abort_burst_sds }} * sqrt(expected_aborts)) as threshold,
        {{ printf('%d of %d queries aborted, %.1f expected at the trailing rate', ['aborted', 'queries', 'expected_aborts']) }} as detail
    from limits
    where has_baseline
        and aborted >= greatest({{ a.abort_burst_min_aborts }}, expected_aborts + {{ a.abort_burst_sds }} * sqrt(expected_aborts))

),

-- Written by the asset of source workload_forecasts with it (one source per Dagster asset key).
forecast_history as (

    {{ relation_or_empty(source('insights', 'workload_forecasts').incorporate(path={'identifier': 'forecast_history'}), {
        'deployment': 'varchar', 'instance_id': 'bigint', 'hour': 'timestamp', 'metric': 'varchar',
        'model': 'varchar', 'origin': 'timestamp', 'forecast': 'double', 'lower': 'double', 'upper': 'double'}) }}

),

forecasts_ahead as (

    {{ relation_or_empty(source('insights', 'workload_forecasts'), {
        'deployment': 'varchar', 'instance_id': 'bigint', 'hour': 'timestamp', 'metric': 'varchar',
        'model': 'varchar', 'forecast': 'double', 'lower': 'double', 'upper': 'double'}) }}

),

-- Past hours: the out-of-sample forecasts made before them; an hour without one (newer than the
-- forecast run) takes the current forecast's. Never both, so no band of hindsight is mixed in.
forecasts as (

    select deployment, instance_id, hour, model, forecast, upper
    from forecast_history
    where metric = 'queries'
    union all
    select deployment, instance_id, hour, model, forecast, upper
    from forecasts_ahead as f
    where metric = 'queries'
        and not exists (
            select 1 from forecast_history as h
            where h.metric = 'queries' and (h.deployment, h.instance_id, h.hour) = (f.deployment, f.instance_id, f.hour)
        )

),

-- The served model's band (forecast.DEFAULT_MODEL, the one the dashboards show) must be exceeded.
forecast_bands as (

    select deployment, instance_id, hour, forecast, upper, model
    from forecasts
    where model = '{{ a.load_surge_model }}'

),

surges as (

    select m.deployment, m.instance_id, m.hour, 'load_surge' as tag,
        m.queries as value,
        f.forecast as baseline,
        {{ a.load_surge_factor }} * f.upper as threshold,
        {{ printf('%d queries, forecast %.0f (upper %.0f, %s)', ['m.queries', 'f.forecast', 'f.upper', 'f.model']) }} as detail
    from metrics as m
    inner join forecast_bands as f using (deployment, instance_id, hour)
    where m.queries >= {{ a.load_surge_min_queries }} and m.queries > {{ a.load_surge_factor }} * f.upper

),

tags as (

    select * from exec_spikes
    union all
    select * from spills
    union all
    select * from queue_bound
    union all
    select * from abort_bursts
    union all
    select * from surges

)

select
    deployment,
    instance_id,
    hour,
    tag,
    cast(value as double) as value,
    cast(baseline as double) as baseline,
    cast(threshold as double) as threshold,
    detail
from tags
