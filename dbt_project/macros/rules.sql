{% macro quarantine_reason() -%}
  {#- The first rule a staged row breaks, or NULL for a clean row. One reason per row, in this
      order, so that staged = clean + quarantined + duplicates removed adds up. The last rules
      are the plausible bounds (var plausible_bounds), one per column, in the var's order. -#}
  case
    when deployment is null or instance_id is null or query_id is null
      then 'null_key'
    when deployment not in ({{ sql_list(var('deployments')) }})
      then 'unknown_deployment'
    when compile_duration_ms < 0 or queue_duration_ms < 0 or execution_duration_ms < 0
      then 'negative_duration'
    -- A missing arrival cannot be inside the span either. "In the future" means after the message
    -- was produced (its Kafka timestamp; a landing row's ingest time), not after the build's clock:
    -- a rebuild gives the same answer, and a replay of old data is judged like live data.
    when arrival_timestamp is null
      or arrival_timestamp < timestamp '{{ span_date("span_start") }}'
      or arrival_timestamp >= timestamp '{{ span_date("span_end") }}'
      or arrival_timestamp > coalesce(kafka_timestamp, ingested_at)
      then 'arrival_out_of_span'
    when query_type is null or query_type not in ({{ sql_list(var('query_types')) }})
      then 'unknown_query_type'
    when was_cached and cache_source_query_id is null
      then 'cached_without_source'
    -- Counted by commas, before any split: a list longer than var max_table_ids would fan out
    -- into that many rows of flattened_table_access.
    when {{ list_length_over('read_table_ids') }} or {{ list_length_over('write_table_ids') }}
      then 'too_many_table_ids'
    {%- for column, bounds in plausible_bounds().items() %}
    -- NULL passes; NaN sorts above every number in DuckDB, so it fails like infinity.
    when not ({{ column }} between {{ bounds[0] }} and {{ bounds[1] }})
      then 'implausible_value: {{ column }}'
    {%- endfor %}
  end
{%- endmacro %}


{% macro quarantine_reasons() -%}
  {#- Every reason quarantine_reason() can give, in its order (the accepted_values of `reason`). -#}
  {%- set reasons = ['null_key', 'unknown_deployment', 'negative_duration', 'arrival_out_of_span', 'unknown_query_type',
                     'cached_without_source', 'too_many_table_ids'] -%}
  {%- for column in plausible_bounds() -%}
    {%- do reasons.append('implausible_value: ' ~ column) -%}
  {%- endfor -%}
  {{ return(reasons) }}
{%- endmacro %}


{% macro list_length_over(column) -%}
  {#- More than var max_table_ids comma-separated entries (empty ones count too; NULL: false). -#}
  coalesce(length({{ column }}) - length(replace({{ column }}, ',', '')) + 1 > {{ var('max_table_ids') | int }}, false)
{%- endmacro %}


{% macro plausible_bounds() -%}
  {#- var plausible_bounds ({column: [min, max]}), checked: a typo fails the compile, naming it. -#}
  {%- set bounds = var('plausible_bounds') -%}
  {%- for column, pair in bounds.items() -%}
    {%- if pair is string or pair | length != 2 or not (pair[0] is number and pair[1] is number) or pair[0] > pair[1] -%}
      {{ exceptions.raise_compiler_error("var plausible_bounds: " ~ column ~ " needs [min, max] numbers with min <= max, got " ~ pair) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(bounds) }}
{%- endmacro %}


{% macro delivery_order() -%}
  {#- "Earliest delivery first": the row written to the raw zone first, then the Kafka message
      produced first; the remaining columns only make the order total (deterministic). -#}
  ingested_at, kafka_timestamp nulls last, kafka_topic, kafka_topic_id, kafka_partition, kafka_offset, source_file,
  source_row
{%- endmacro %}


{% macro sql_list(values) -%}
  {%- for value in values -%}'{{ value }}'{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}


{% macro table_ids(column) -%}
  {#- The ids in a comma-separated list column as a list of trimmed, non-empty strings.
      NULL, '' and ' 19 , 210377 ' are all handled. -#}
  {{ list_filter(list_transform(string_split('coalesce(' ~ column ~ ", '')", ','), 'trim(x)'), "x <> ''") }}
{%- endmacro %}


{% macro integer_table_ids(column) -%}
  {#- The distinct integer ids of a comma-separated list column, as a list of bigint; tokens that
      are not integers are left out (table_ids_are_integers reports them). -#}
  {{ list_distinct(list_filter(list_transform(table_ids(column), 'try_cast(x as bigint)'), 'x is not null')) }}
{%- endmacro %}

