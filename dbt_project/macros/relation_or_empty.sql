{#- The rows of `relation` if it exists in the warehouse, else an empty select with `columns`
    ({name: type}): for a table another asset writes (workload_forecasts), so a model reading it
    still builds before that asset has ever run. In a unit test the source is the test's input, a
    CTE with no schema, which cannot be looked up: empty too (so unit tests cannot cover it). -#}
{% macro relation_or_empty(relation, columns) %}
    {%- set found = adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) if execute and relation.schema else none -%}
    {%- if found is not none -%}
    select {{ columns.keys() | join(', ') }} from {{ relation }}
    {%- else -%}
    select {% for name, type in columns.items() %}cast(null as {{ dbt.type_string() if type == 'varchar' else type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %} where false
    {%- endif -%}
{% endmacro %}
