{#- Aggregates whose names or syntax differ. Percentiles: DuckDB's quantile_cont and Spark's
    percentile both interpolate linearly between the values at rank (n - 1) * q; quantile_disc and
    percentile_disc both take the first value whose cumulative share reaches q. -#}

{% macro quantile_cont(column, q) -%}{{ return(adapter.dispatch('quantile_cont')(column, q)) }}{%- endmacro %}
{% macro duckdb__quantile_cont(column, q) -%}quantile_cont({{ column }}, {{ q }}){%- endmacro %}
{% macro spark__quantile_cont(column, q) -%}percentile({{ column }}, {{ q }}){%- endmacro %}

{% macro quantile_disc(column, q) -%}{{ return(adapter.dispatch('quantile_disc')(column, q)) }}{%- endmacro %}
{% macro duckdb__quantile_disc(column, q) -%}quantile_disc({{ column }}, {{ q }}){%- endmacro %}
{% macro spark__quantile_disc(column, q) -%}percentile_disc({{ q }}) within group (order by {{ column }}){%- endmacro %}

{#- Bit mask of the grouping-set columns rolled up (first column = highest bit). grouping() takes
    several columns in DuckDB, one in Spark (whose grouping_id() must name every grouping column),
    so Spark adds up one grouping() per column. -#}
{% macro grouping_id(columns) -%}{{ return(adapter.dispatch('grouping_id')(columns)) }}{%- endmacro %}
{% macro duckdb__grouping_id(columns) -%}grouping({{ columns | join(', ') }}){%- endmacro %}
{% macro spark__grouping_id(columns) -%}
  ({% for column in columns %}grouping({{ column }}) * {{ 2 ** (columns | length - loop.index) }}{{ ' + ' if not loop.last }}{% endfor %})
{%- endmacro %}

{#- `value` of the group's first row in the order of `sort_keys` (all ascending; negate a number
    to sort it descending). Spark has no ordered first(): min_by over the keys as one struct. -#}
{% macro first_by(value, sort_keys) -%}{{ return(adapter.dispatch('first_by')(value, sort_keys)) }}{%- endmacro %}
{% macro duckdb__first_by(value, sort_keys) -%}first({{ value }} order by {{ sort_keys | join(', ') }}){%- endmacro %}
{% macro spark__first_by(value, sort_keys) -%}min_by({{ value }}, struct({{ sort_keys | join(', ') }})){%- endmacro %}

{#- Median and median absolute deviation over a window frame (`window`: a named window). Spark
    has neither as a framed window function: the frame's values are collected and the median is
    taken from the sorted array, interpolated as DuckDB does (lo + (rank - floor) * (hi - lo)). -#}
{% macro window_median(column, window) -%}{{ return(adapter.dispatch('window_median')(column, window)) }}{%- endmacro %}
{% macro duckdb__window_median(column, window) -%}median({{ column }}) over {{ window }}{%- endmacro %}
{% macro spark__window_median(column, window) -%}
  {{ spark_sorted_median('array_sort(collect_list(' ~ column ~ ') over ' ~ window ~ ')', 's') }}
{%- endmacro %}

{% macro window_mad(column, window) -%}{{ return(adapter.dispatch('window_mad')(column, window)) }}{%- endmacro %}
{% macro duckdb__window_mad(column, window) -%}mad({{ column }}) over {{ window }}{%- endmacro %}
{% macro spark__window_mad(column, window) -%}
  {#- The frame's values `a`, their median `m`, then the median of |a - m|. -#}
  aggregate(array(array_sort(collect_list({{ column }}) over {{ window }})), cast(null as double), (acc_a, a) ->
    aggregate(array({{ spark_sorted_median('a', 's') }}), cast(null as double), (acc_m, m) ->
      {{ spark_sorted_median('array_sort(transform(a, v -> abs(v - m)))', 'd') }}))
{%- endmacro %}

{% macro spark_sorted_median(sorted, name) -%}
  {#- The interpolated median of a sorted array of numbers (NULL when empty), the array bound to
      the lambda variable `name` so that it is computed once. -#}
  aggregate(array({{ sorted }}), cast(null as double), (acc_{{ name }}, {{ name }}) ->
    case when size({{ name }}) > 0 then
      cast(element_at({{ name }}, cast(floor((size({{ name }}) - 1) / 2.0D) as int) + 1) as double)
      + ((size({{ name }}) - 1) / 2.0D - floor((size({{ name }}) - 1) / 2.0D))
      * (element_at({{ name }}, cast(ceil((size({{ name }}) - 1) / 2.0D) as int) + 1)
         - element_at({{ name }}, cast(floor((size({{ name }}) - 1) / 2.0D) as int) + 1))
    end)
{%- endmacro %}
