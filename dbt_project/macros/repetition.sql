{% macro repeat_key(fingerprint, scans, joins, read_ids) -%}
  {#- Redbench's repetition key, hashed (the same number on both engines): the feature fingerprint, the scan and join counts and the
      read-table set (sorted, de-duplicated), where `read_ids` is already a distinct list (macro
      integer_table_ids). No fingerprint, no key: such a query never repeats. -#}
  case when {{ fingerprint }} is not null
    then {{ portable_hash("concat_ws('|', " ~ fingerprint ~ ", coalesce(cast(" ~ scans ~ " as " ~ dbt.type_string() ~ "), ''), coalesce(cast("
        ~ joins ~ " as " ~ dbt.type_string() ~ "), ''), " ~ list_to_string(list_sort(read_ids), ',') ~ ')') }}
  end
{%- endmacro %}


{% macro from_partition_window(column) -%}
  {#- SQL predicate keeping the rows of the partition window and of every later date: for models
      whose rows depend on all earlier dates, so a partition run also recomputes the dates after
      its window (which it may change). Without a window it keeps every row. -#}
  {%- set max_date = window_date('max_date') -%}
  {%- if max_date -%}
    ({{ partition_window(column) }} or {{ column }} > date '{{ max_date }}')
  {%- else -%}
    {{ partition_window(column) }}
  {%- endif -%}
{%- endmacro %}


{% macro repetition_counts() -%}
  {#- The repetition counts of a group of query_repeats rows (an instance's day, a deployment, the
      fleet): one definition for daily_query_repetition and fleet_query_repetition. -#}
  count(*) as queries,
        count(*) filter (where is_repeat) as repeats,
        count(*) filter (where was_cached) as cache_hits,
        count(*) filter (where is_repeat and not was_cached) as missed_cache_repeats,
        {{ quantile_cont('seconds_since_previous', 0.5) }} filter (where is_repeat) as median_seconds_between_repeats,
        count(*) filter (where is_cacheable) as cacheable_repeats,
        coalesce(sum(execution_duration_ms) filter (where is_cacheable and not was_cached), 0) / cast(3600000 as double) as saved_exec_hours
{%- endmacro %}


{% macro repetition_shares() -%}
  {#- The counts of repetition_counts() with the shares they give. -#}
  queries,
    repeats,
    repeats / queries as repeat_share,
    cache_hits,
    cache_hits / queries as cache_hit_rate,
    missed_cache_repeats,
    missed_cache_repeats / nullif(repeats, 0) as missed_cache_share,
    median_seconds_between_repeats,
    cacheable_repeats,
    cast(saved_exec_hours as double) as saved_exec_hours
{%- endmacro %}
