{% macro quarantine_reason() -%}
  {#- The first rule a staged row breaks, or NULL for a clean row. One reason per row, in this
      order, so that staged = clean + quarantined + duplicates removed adds up. -#}
  case
    when deployment is null or instance_id is null or query_id is null
      then 'null_key'
    when compile_duration_ms < 0 or queue_duration_ms < 0 or execution_duration_ms < 0
      then 'negative_duration'
    -- A missing arrival cannot be inside the span either.
    when arrival_timestamp is null
      or arrival_timestamp < timestamp '{{ span_date("span_start") }}'
      or arrival_timestamp >= timestamp '{{ span_date("span_end") }}'
      or arrival_timestamp > (current_timestamp at time zone 'UTC')
      then 'arrival_out_of_span'
    when query_type is null or query_type not in ({{ sql_list(var('query_types')) }})
      then 'unknown_query_type'
    when was_cached and cache_source_query_id is null
      then 'cached_without_source'
  end
{%- endmacro %}


{% macro delivery_order() -%}
  {#- "Earliest delivery first": the row written to the raw zone first, then the Kafka message
      produced first; the remaining columns only make the order total (deterministic). -#}
  ingested_at, kafka_timestamp nulls last, kafka_topic, kafka_partition, kafka_offset, source_file, source_row
{%- endmacro %}


{% macro sql_list(values) -%}
  {%- for value in values -%}'{{ value }}'{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}


{% macro table_ids(column) -%}
  {#- The ids in a comma-separated list column as a list of trimmed, non-empty strings.
      NULL, '' and ' 19 , 210377 ' are all handled. -#}
  list_filter(list_transform(string_split(coalesce({{ column }}, ''), ','), lambda x: trim(x)), lambda x: x <> '')
{%- endmacro %}


{% macro integer_table_ids(column) -%}
  {#- The distinct integer ids of a comma-separated list column, as a list of bigint; tokens that
      are not integers are left out (table_ids_are_integers reports them). -#}
  list_distinct(list_filter(list_transform({{ table_ids(column) }}, lambda x: try_cast(x as bigint)), lambda x: x is not null))
{%- endmacro %}
