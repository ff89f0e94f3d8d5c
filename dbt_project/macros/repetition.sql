{% macro repeat_key(fingerprint, scans, joins, read_ids) -%}
  {#- Redbench's repetition key, hashed: the feature fingerprint, the scan and join counts and the
      read-table set (sorted, de-duplicated), where `read_ids` is already a distinct list (macro
      integer_table_ids). No fingerprint, no key: such a query never repeats. -#}
  case when {{ fingerprint }} is not null
    then hash({{ fingerprint }}, {{ scans }}, {{ joins }}, list_sort({{ read_ids }}))
  end
{%- endmacro %}


{% macro from_partition_window(column) -%}
  {#- SQL predicate keeping the rows of the partition window and of every later date: for models
      whose rows depend on all earlier dates, so a partition run also recomputes the dates after
      its window (which it may change). Without a window it keeps every row. -#}
  {%- set max_date = window_date('max_date') -%}
  {%- if max_date -%}
    ({{ partition_window(column) }} or {{ column }} > date '{{ max_date }}')
  {%- else -%}
    {{ partition_window(column) }}
  {%- endif -%}
{%- endmacro %}
