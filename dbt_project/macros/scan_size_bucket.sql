{% macro scan_size_bucket(column) -%}
  {#- The paper's scan-size bucket of `column` (MB) as a label: '[0, 1 GB)', '[1 GB, 10 GB)', ...,
      '[1 TB, inf)' from var scan_size_edges_mb (lower edge inclusive, as the generator draws them),
      and 'unknown' for NULL, so every query lands in exactly one bucket. -#}
  {%- set edges = var('scan_size_edges_mb') -%}
  {%- set labels = scan_size_buckets() -%}
  case
    when {{ column }} is null then 'unknown'
    {%- for upper in edges %}
    when {{ column }} < {{ upper }} then '{{ labels[loop.index0] }}'
    {%- endfor %}
    else '{{ labels[edges | length] }}'
  end
{%- endmacro %}


{% macro scan_size_buckets() -%}
  {#- Every label scan_size_bucket() gives, smallest first, then 'unknown' (accepted_values). -#}
  {%- set bounds = [0] + var('scan_size_edges_mb') -%}
  {%- set labels = [] -%}
  {%- for lower in bounds -%}
    {%- set upper = mb_label(bounds[loop.index0 + 1]) if not loop.last else 'inf' -%}
    {%- do labels.append('[' ~ (mb_label(lower) if lower else 0) ~ ', ' ~ upper ~ ')') -%}
  {%- endfor -%}
  {{ return(labels + ['unknown']) }}
{%- endmacro %}


{% macro mb_label(mb) -%}
  {#- 1048576 -> '1 TB', 10240 -> '10 GB', 500 -> '500 MB' (binary units, as Redshift reports). -#}
  {%- if mb % 1048576 == 0 -%}{{ (mb // 1048576) ~ ' TB' }}
  {%- elif mb % 1024 == 0 -%}{{ (mb // 1024) ~ ' GB' }}
  {%- else -%}{{ mb ~ ' MB' }}
  {%- endif -%}
{%- endmacro %}
