{#- The incremental strategies of partition_window.sql on Spark. Every table there is plain Parquet
    partitioned by arrival_date (dbt_project.yml), which has no DELETE or MERGE: a strategy
    computes the full new content of every date it rewrites and replaces those partitions with an
    insert overwrite (spark.sql.sources.partitionOverwriteMode=dynamic, set in profiles.yml: only
    the dates written are replaced). A date of the window that now has no rows at all is not
    written, so its partition is dropped. The freshly computed rows (dbt-spark's temp view) are
    cached on disk first, so the model's query runs once.
    partition_window_and_keys assumes, as every model using it does, that a unique_key never
    changes dates (it holds the query, or the date itself). Not atomic across dates: a failed run
    leaves its window to be rebuilt by the next one. -#}

{% macro spark__get_incremental_partition_window_sql(arg_dict) -%}
  {{ spark_partition_window_overwrite(arg_dict, []) }}
{%- endmacro %}


{% macro spark__get_incremental_partition_window_and_keys_sql(arg_dict) -%}
  {%- set keys = arg_dict['unique_key'] -%}
  {%- set keys = [keys] if keys is string else keys -%}
  {%- if not keys -%}
    {{ exceptions.raise_compiler_error("incremental strategy partition_window_and_keys needs a unique_key") }}
  {%- endif -%}
  {{ spark_partition_window_overwrite(arg_dict, keys) }}
{%- endmacro %}


{% macro spark_partition_window_overwrite(arg_dict, keys) -%}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set fresh = arg_dict['temp_relation'] -%}
  {%- set names = arg_dict['dest_columns'] | map(attribute='name') | list -%}
  {%- if names[-1] != 'arrival_date' -%}
    {{ exceptions.raise_compiler_error(target ~ " must be partitioned by arrival_date (its last column) for strategy " ~ config.get('incremental_strategy')) }}
  {%- endif -%}
  {%- if execute -%}
    {%- do run_query("cache table " ~ fresh ~ " options ('storageLevel' 'DISK_ONLY')") -%}
    {%- set emptied = run_query(
        "select distinct old.arrival_date from " ~ target ~ " as old left anti join (select distinct arrival_date from "
        ~ fresh ~ ") as fresh on old.arrival_date = fresh.arrival_date where " ~ partition_window('old.arrival_date')) -%}
    {%- if emptied.rows | length > 0 -%}
      {%- set specs = [] -%}
      {%- for row in emptied.rows -%}{%- do specs.append("partition (arrival_date = '" ~ row[0] ~ "')") -%}{%- endfor -%}
      {%- do run_query("alter table " ~ target ~ " drop if exists " ~ specs | join(', ')) -%}
    {%- endif -%}
  {%- endif -%}
  insert overwrite table {{ target }} partition (arrival_date)
  select {{ names | join(', ') }} from {{ fresh }}
  {%- if keys %}
  union all
  -- The other rows of the dates rewritten outside the window: kept unless a fresh row has their key.
  select {% for name in names %}old.{{ name }}{{ ', ' if not loop.last }}{% endfor %}
  from {{ target }} as old
  left anti join {{ fresh }} as fresh
      on {% for key in keys %}old.{{ key }} = fresh.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
  where old.arrival_date in (select arrival_date from {{ fresh }})
    and not ({{ partition_window('old.arrival_date') }})
  {%- endif %}
{%- endmacro %}


{#- dbt-spark's incremental materialization accepts only its own strategies; these two overrides
    (root-project macros win over the adapter's) let it run the project's, and leave the others
    to dbt-spark. -#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
  {%- if raw_strategy in ['partition_window', 'partition_window_and_keys'] -%}
    {{ return(raw_strategy) }}
  {%- endif -%}
  {{ return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{%- endmacro %}


{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
  {%- set arg_dict = {
      'target_relation': target, 'temp_relation': source, 'unique_key': unique_key,
      'dest_columns': adapter.get_columns_in_relation(target), 'incremental_predicates': incremental_predicates} -%}
  {%- if strategy == 'partition_window' -%}
    {{ get_incremental_partition_window_sql(arg_dict) }}
  {%- elif strategy == 'partition_window_and_keys' -%}
    {{ get_incremental_partition_window_and_keys_sql(arg_dict) }}
  {%- else -%}
    {{ dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) }}
  {%- endif -%}
{%- endmacro %}
