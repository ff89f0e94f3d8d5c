{% macro asof_join(left, right, keys, left_time, right_time, value, alias, direction, kind='left') -%}
  {#- Every row of `left` with `alias` = the `value` (a column of `right`, a time) of the nearest row
      of `right` with the same `keys`: direction 'at_or_before' (right_time <= left_time, the
      latest), 'before' (right_time < left_time, the latest) or 'after' (right_time > left_time,
      the earliest). kind 'left' keeps unmatched rows (alias NULL), 'inner' drops them.
      `value` must be `right_time` itself or rise with it (the Spark version relies on that). -#}
  {{ return(adapter.dispatch('asof_join')(left, right, keys, left_time, right_time, value, alias, direction, kind)) }}
{%- endmacro %}


{% macro duckdb__asof_join(left, right, keys, left_time, right_time, value, alias, direction, kind) -%}
  {%- set op = {'at_or_before': '>=', 'before': '>', 'after': '<'}[direction] -%}
    select {{ left }}.*, {{ right }}.{{ value }} as {{ alias }}
    from {{ left }}
    asof {{ 'left ' if kind == 'left' }}join {{ right }}
        on {% for key in keys %}{{ left }}.{{ key }} = {{ right }}.{{ key }} and {% endfor -%}
        {{ left }}.{{ left_time }} {{ op }} {{ right }}.{{ right_time }}
{%- endmacro %}


{% macro spark__asof_join(left, right, keys, left_time, right_time, value, alias, direction, kind) -%}
  {#- Spark has no ASOF join. The distinct (keys, left time) points and the right rows are sorted
      together per key; a running max (or, looking ahead, a running min) of the right values then
      gives each point its nearest one. At equal times a right row sorts before the point when it
      counts ('at_or_before') or when it must not ('after'), else after it ('before'). -#}
  {%- set right_first = direction in ('at_or_before', 'after') -%}
  {%- set frame = 'rows between current row and unbounded following' if direction == 'after' else 'rows between unbounded preceding and current row' -%}
    select {{ left }}.*, asof_points.asof_value as {{ alias }}
    from {{ left }}
    {{ 'left' if kind == 'left' else 'inner' }} join (
        select {{ keys | join(', ') }}, asof_time, asof_value
        from (
            select {{ keys | join(', ') }}, asof_time, is_point,
                {{ 'min' if direction == 'after' else 'max' }}(right_value) over (
                    partition by {{ keys | join(', ') }}
                    order by asof_time, is_point {{ 'asc' if right_first else 'desc' }}
                    {{ frame }}
                ) as asof_value
            from (
                select distinct {{ keys | join(', ') }}, {{ left_time }} as asof_time, 1 as is_point,
                    cast(null as timestamp) as right_value
                from {{ left }}
                union all
                select {{ keys | join(', ') }}, {{ right_time }}, 0, {{ value }}
                from {{ right }}
            ) as asof_all
        ) as asof_ranked
        where is_point = 1 {{ 'and asof_value is not null' if kind == 'inner' }}
    ) as asof_points
        on {% for key in keys %}{{ left }}.{{ key }} = asof_points.{{ key }} and {% endfor -%}
        {{ left }}.{{ left_time }} = asof_points.asof_time
{%- endmacro %}
