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
