{#- Scalar expressions whose names or syntax differ. -#}

{#- Now, as a UTC timestamp without time zone (Spark's session time zone is UTC, see profiles.yml). -#}

{#- Seconds from `start` to `end` (timestamps), with the microseconds as a fraction. -#}
{% macro seconds_between(start, end) -%}{{ return(adapter.dispatch('seconds_between')(start, end)) }}{%- endmacro %}
{% macro duckdb__seconds_between(start, end) -%}epoch({{ end }} - {{ start }}){%- endmacro %}
{% macro spark__seconds_between(start, end) -%}(unix_micros({{ end }}) - unix_micros({{ start }})) / 1e6{%- endmacro %}

{#- The last part of a file path (a raw-zone file's name). -#}
{% macro file_name(path) -%}{{ return(adapter.dispatch('file_name')(path)) }}{%- endmacro %}
{% macro duckdb__file_name(path) -%}parse_filename({{ path }}){%- endmacro %}
{% macro spark__file_name(path) -%}regexp_extract({{ path }}, '[^/]*$', 0){%- endmacro %}

{#- A 60-bit integer hash of a string, the same on both engines (first 15 hex digits of its MD5):
    engine hashes (DuckDB hash, Spark hash/xxhash64) differ, and a stored key must not. -#}
{% macro portable_hash(text) -%}{{ return(adapter.dispatch('portable_hash')(text)) }}{%- endmacro %}
{% macro duckdb__portable_hash(text) -%}cast('0x' || left(md5({{ text }}), 15) as bigint){%- endmacro %}
{% macro spark__portable_hash(text) -%}cast(conv(left(md5({{ text }}), 15), 16, 10) as bigint){%- endmacro %}

{#- printf: Spark formats with Java's Formatter, which rounds a tie (2.5 with %.0f) half up; DuckDB
    rounds it half to even. Each %.Nf argument is rounded half-even to N digits first (bround). -#}
{% macro printf(format, args) -%}{{ return(adapter.dispatch('printf')(format, args)) }}{%- endmacro %}
{% macro duckdb__printf(format, args) -%}printf('{{ format }}', {{ args | join(', ') }}){%- endmacro %}
{% macro spark__printf(format, args) -%}
  {%- set specs = modules.re.findall('%[-+ 0#]*[0-9]*(?:\\.([0-9]+))?([a-zA-Z%])', format) | reject('equalto', ('', '%')) | list -%}
  {%- set rounded = [] -%}
  {%- for arg in args -%}
    {%- set digits, kind = specs[loop.index0] -%}
    {%- do rounded.append('bround(' ~ arg ~ ', ' ~ digits ~ ')' if kind == 'f' and digits else arg) -%}
  {%- endfor -%}
  format_string('{{ format }}', {{ rounded | join(', ') }})
{%- endmacro %}

{#- `* exclude (columns)` in DuckDB is `* except (columns)` in Spark: the words after the star. -#}
{% macro star_exclude(columns) -%}{{ return(adapter.dispatch('star_exclude')(columns)) }}{%- endmacro %}
{% macro duckdb__star_exclude(columns) -%}exclude ({{ columns | join(', ') }}){%- endmacro %}
{% macro spark__star_exclude(columns) -%}except ({{ columns | join(', ') }}){%- endmacro %}

{#- The set operator between two selects with the same columns. DuckDB matches them by name;
    Spark SQL has no by-name union, so there the selects must list them in the same order. -#}
{% macro union_all_by_name() -%}{{ return(adapter.dispatch('union_all_by_name')()) }}{%- endmacro %}
{% macro duckdb__union_all_by_name() -%}union all by name{%- endmacro %}
{% macro spark__union_all_by_name() -%}union all{%- endmacro %}
