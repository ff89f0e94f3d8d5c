{% macro raw_zone_rows(table_name) -%}
  {#- Every row of one raw-zone source table, with the Parquet file it came from (`filename`).
      read_parquet fails on a glob that matches no file, and the landing folder is often empty, so
      when nothing matches yet this returns a typed empty result built from the source's declared
      columns. stg_query_deliveries is a view re-created by every run, so new files are picked up. -#}
  {%- set relation = source('raw_zone', table_name) -%}
  {%- set node = graph.sources.get('source.' ~ project_name ~ '.raw_zone.' ~ table_name) if execute -%}
  {%- if execute and raw_file_count(node.config.meta.raw_glob) == 0 -%}
    select
    {%- for column in node.columns.values() %}
        cast(null as {{ column.data_type }}) as {{ column.name }},
    {%- endfor %}
        cast(null as varchar) as filename
    where false
  {%- else -%}
    select * from {{ relation }}
  {%- endif -%}
{%- endmacro %}


{% macro raw_file_count(pattern) -%}
  {%- set result = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
  {{ return(result.columns[0].values()[0]) }}
{%- endmacro %}
