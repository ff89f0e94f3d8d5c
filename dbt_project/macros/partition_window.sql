{#-
  The partition window: every piece of it lives in this file.

  1. Dagster: the daily dbt models (tag `daily`) are daily-partitioned; a run covers one partition
     or a range of them (BackfillPolicy.single_run: one step per range, which runs dbt once per
     window of at most REDSET_DBT_WINDOW_ROWS raw rows, in date order: pipeline_assets/warehouse/build_windows.py).
  2. pipeline_assets/warehouse/dbt_assets.py `window_env()` turns the range into REDSET_MIN_DATE / REDSET_MAX_DATE
     (first and last day, inclusive; empty: no window, every date). They are environment variables,
     not --vars, and window_date() reads them only at run time (`execute`): dbt re-parses the whole
     project when --vars change, but not for an env var it never saw while parsing, so every
     partition run keeps the partial parse. `--vars '{min_date: ..., max_date: ...}'` still works by hand.
  3. partition_window(column): the SQL predicate "column is in the window" that every daily model
     puts on its inputs (and stress_index widens with lookback_days). The span's first and last
     days are open-ended, so out-of-span rows still reach quarantine.
  4. Incremental strategy `partition_window` (stg_queries and the daily marts, see dbt_project.yml):
     delete every target row of the window's arrival dates, insert the freshly computed rows: exactly
     the window's dates are replaced, the other dates are not touched.
  5. get_where_subquery override: the generic tests of a daily model look only at the window on a
     partition run (a full build tests everything).
  6. The special case, strategy `partition_window_and_keys` (daily_table_ingest_gaps): a window's
     ingests change rows of earlier/later dates (their "next ingest"), so the model also returns
     those rows, and they replace the old rows with the same unique_key.

  7. On Spark (plain Parquet tables partitioned by arrival_date, no DELETE), both strategies are
     an insert overwrite of the dates they rewrite: macros/cross_engine/spark_partition_window.sql.

  tests/test_partition_window.py shows a rebuilt day replacing exactly its own dates.
-#}


{% macro window_date(name) -%}
  {#- The window date `name` (min_date or max_date) as a datetime.date, or none when not given:
      from --vars (by hand), else from REDSET_MIN_DATE / REDSET_MAX_DATE (what Dagster sets), read
      only when models run. dbt re-parses the whole project whenever --vars change, but not for an
      environment variable it never saw while parsing, so Dagster's runs keep partial parsing.
      A bad value fails the compile with the variable's name, instead of producing bad SQL. -#}
  {%- set value = var(name, none) -%}
  {%- if value is none and execute -%}
    {%- set value = env_var('REDSET_' ~ name | upper, '') -%}
  {%- endif -%}
  {%- if value is none or (value | string | trim) == '' -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set text = value | string | trim -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
    {{ exceptions.raise_compiler_error("var '" ~ name ~ "' must be a date YYYY-MM-DD, got '" ~ text ~ "'") }}
  {%- endif -%}
  {{ return(modules.datetime.date.fromisoformat(text)) }}
{%- endmacro %}


{% macro span_date(name) -%}
  {{ return(modules.datetime.date.fromisoformat(var(name) | string | trim)) }}
{%- endmacro %}


{% macro partition_window(column, lookback_days=0) -%}
  {#- SQL predicate keeping the rows of the partition window: min_date to max_date, both inclusive
      (see window_date above). Without a window it keeps every row, so a plain
      `dbt build` rebuilds all dates. The first and last partitions of the span are open-ended, so
      rows that arrived before or after the span still reach clean/quarantine (and get quarantined).
      lookback_days widens the lower bound for models that need earlier rows as context. -#}
  {%- set min_date = window_date('min_date') -%}
  {%- set max_date = window_date('max_date') -%}
  {%- set first_day = span_date('span_start') -%}
  {%- set last_day = span_date('span_end') - modules.datetime.timedelta(days=1) -%}
  {%- if min_date and max_date and min_date > max_date -%}
    {{ exceptions.raise_compiler_error("var min_date " ~ min_date ~ " is after max_date " ~ max_date) }}
  {%- endif -%}
  {%- set conditions = [] -%}
  {%- if min_date and min_date > first_day -%}
    {%- do conditions.append(column ~ " >= date '" ~ (min_date - modules.datetime.timedelta(days=lookback_days)) ~ "'") -%}
  {%- endif -%}
  {%- if max_date and max_date < last_day -%}
    {%- do conditions.append(column ~ " <= date '" ~ max_date ~ "'") -%}
  {%- endif -%}
  {{- conditions | join(' and ') if conditions else 'true' -}}
{%- endmacro %}


{% macro is_partition_run() -%}
  {#- True when Dagster passed a window, i.e. the run covers only some arrival dates. -#}
  {{ return(window_date('min_date') is not none or window_date('max_date') is not none) }}
{%- endmacro %}


{% macro get_incremental_partition_window_sql(arg_dict) -%}
  {{ return(adapter.dispatch('get_incremental_partition_window_sql')(arg_dict)) }}
{%- endmacro %}


{% macro duckdb__get_incremental_partition_window_sql(arg_dict) -%}
  {#- Incremental strategy `partition_window`: delete+insert for the partition window. Every target
      row whose arrival_date is in the window goes (even for dates that now produce no rows), then
      the freshly computed rows go in. Without a window this replaces the whole table. -#}
  {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  delete from {{ arg_dict['target_relation'] }} where {{ partition_window('arrival_date') }};
  insert into {{ arg_dict['target_relation'] }} ({{ columns }})
  select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}


{% macro get_where_subquery(relation) -%}
  {#- Overrides dbt's macro of the same name, which every generic test (not_null, unique, ...)
      calls on the model it tests. On a partition run, a test of a daily model then looks at the
      partition window only, instead of scanning the whole table each time a day is rebuilt; a
      full build (no window) still tests everything. The test's own `where` config still applies.
      (dbt's documented way to template test filters with a macro.) -#}
  {%- set conditions = [] -%}
  {%- set where = config.get('where') -%}
  {%- if where -%}
    {%- do conditions.append('(' ~ where ~ ')') -%}
  {%- endif -%}
  {%- if execute and is_partition_run() and is_daily_relation(relation) -%}
    {%- do conditions.append(partition_window('arrival_date')) -%}
  {%- endif -%}
  {%- if conditions -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}


{% macro is_daily_relation(relation) -%}
  {#- True when `relation` is a model tagged `daily` (date-partitioned, with an arrival_date). -#}
  {%- for node in graph.nodes.values() -%}
    {%- if node.resource_type == 'model' and node.name == relation.identifier and 'daily' in node.tags -%}
      {{ return(true) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(false) }}
{%- endmacro %}


{% macro get_incremental_partition_window_and_keys_sql(arg_dict) -%}
  {{ return(adapter.dispatch('get_incremental_partition_window_and_keys_sql')(arg_dict)) }}
{%- endmacro %}


{% macro duckdb__get_incremental_partition_window_and_keys_sql(arg_dict) -%}
  {#- Incremental strategy `partition_window_and_keys`: partition_window for models whose rows of
      the window also change rows of other dates (daily_table_ingest_gaps: an ingest today is the
      "next ingest" of yesterday's last selects). The model returns the window's rows plus the
      other rows it recomputed; every target row of the window goes (even rows that are gone from
      the source), and so does every target row with the unique_key of a new row, then the new
      rows go in. -#}
  {%- set keys = arg_dict['unique_key'] -%}
  {%- set keys = [keys] if keys is string else keys -%}
  {%- if not keys -%}
    {{ exceptions.raise_compiler_error("incremental strategy partition_window_and_keys needs a unique_key") }}
  {%- endif -%}
  {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  delete from {{ arg_dict['target_relation'] }} where {{ partition_window('arrival_date') }};
  delete from {{ arg_dict['target_relation'] }} as target
  using {{ arg_dict['temp_relation'] }} as fresh
  where {% for key in keys %}target.{{ key }} = fresh.{{ key }}{{ ' and ' if not loop.last }}{% endfor %};
  insert into {{ arg_dict['target_relation'] }} ({{ columns }})
  select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
