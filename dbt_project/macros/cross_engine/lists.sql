{#- Lists (DuckDB) and arrays (Spark): one macro per function whose name or lambda syntax differs.
    `condition` / `expression` are SQL over the element `x`. -#}

{% macro list_filter(list, condition) -%}{{ return(adapter.dispatch('list_filter')(list, condition)) }}{%- endmacro %}
{% macro duckdb__list_filter(list, condition) -%}list_filter({{ list }}, lambda x: {{ condition }}){%- endmacro %}
{% macro spark__list_filter(list, condition) -%}filter({{ list }}, x -> {{ condition }}){%- endmacro %}

{% macro list_transform(list, expression) -%}{{ return(adapter.dispatch('list_transform')(list, expression)) }}{%- endmacro %}
{% macro duckdb__list_transform(list, expression) -%}list_transform({{ list }}, lambda x: {{ expression }}){%- endmacro %}
{% macro spark__list_transform(list, expression) -%}transform({{ list }}, x -> {{ expression }}){%- endmacro %}

{#- The elements of a comma-separated string (Spark's split takes a regex: `separator` is a plain character). -#}
{% macro string_split(text, separator) -%}{{ return(adapter.dispatch('string_split')(text, separator)) }}{%- endmacro %}
{% macro duckdb__string_split(text, separator) -%}string_split({{ text }}, '{{ separator }}'){%- endmacro %}
{% macro spark__string_split(text, separator) -%}split({{ text }}, '{{ separator }}'){%- endmacro %}

{#- Order of the distinct elements is not defined on either engine: sort before relying on it. -#}
{% macro list_distinct(list) -%}{{ return(adapter.dispatch('list_distinct')(list)) }}{%- endmacro %}
{% macro duckdb__list_distinct(list) -%}list_distinct({{ list }}){%- endmacro %}
{% macro spark__list_distinct(list) -%}array_distinct({{ list }}){%- endmacro %}

{% macro list_sort(list) -%}{{ return(adapter.dispatch('list_sort')(list)) }}{%- endmacro %}
{% macro duckdb__list_sort(list) -%}list_sort({{ list }}){%- endmacro %}
{% macro spark__list_sort(list) -%}array_sort({{ list }}){%- endmacro %}

{% macro list_len(list) -%}{{ return(adapter.dispatch('list_len')(list)) }}{%- endmacro %}
{% macro duckdb__list_len(list) -%}len({{ list }}){%- endmacro %}
{% macro spark__list_len(list) -%}size({{ list }}){%- endmacro %}

{% macro list_concat(first, second) -%}{{ return(adapter.dispatch('list_concat')(first, second)) }}{%- endmacro %}
{% macro duckdb__list_concat(first, second) -%}list_concat({{ first }}, {{ second }}){%- endmacro %}
{% macro spark__list_concat(first, second) -%}concat({{ first }}, {{ second }}){%- endmacro %}

{% macro list_to_string(list, separator) -%}{{ return(adapter.dispatch('list_to_string')(list, separator)) }}{%- endmacro %}
{% macro duckdb__list_to_string(list, separator) -%}array_to_string({{ list }}, '{{ separator }}'){%- endmacro %}
{% macro spark__list_to_string(list, separator) -%}array_join({{ list }}, '{{ separator }}'){%- endmacro %}

{#- One output row per element, in a select list (a list of NULL or no elements gives no row). -#}
{% macro unnest(list) -%}{{ return(adapter.dispatch('unnest')(list)) }}{%- endmacro %}
{% macro duckdb__unnest(list) -%}unnest({{ list }}){%- endmacro %}
{% macro spark__unnest(list) -%}explode({{ list }}){%- endmacro %}

{#- Every `days`-th date from `start` to `stop`, both inclusive, one row each, as a date (a select-list
    item: Spark cannot nest a generator in a cast, and its date sequence is already dates). -#}
{% macro unnest_date_series(start, stop, days) -%}{{ return(adapter.dispatch('unnest_date_series')(start, stop, days)) }}{%- endmacro %}
{% macro duckdb__unnest_date_series(start, stop, days) -%}cast(unnest(generate_series({{ start }}, {{ stop }}, interval {{ days }} day)) as date){%- endmacro %}
{% macro spark__unnest_date_series(start, stop, days) -%}explode(sequence({{ start }}, {{ stop }}, interval {{ days }} day)){%- endmacro %}
