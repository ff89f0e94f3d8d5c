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
  {#- Incremental strategy `partition_window`: delete+insert for the partition window. Every target
      row whose arrival_date is in the window goes (even for dates that now produce no rows), then
      the freshly computed rows go in. Without a window this replaces the whole table. -#}
  {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  delete from {{ arg_dict['target_relation'] }} where {{ partition_window('arrival_date') }};
  insert into {{ arg_dict['target_relation'] }} ({{ columns }})
  select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
