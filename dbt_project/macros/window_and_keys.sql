{% macro get_incremental_partition_window_and_keys_sql(arg_dict) -%}
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
