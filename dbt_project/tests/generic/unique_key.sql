{% test unique_key(model, columns) %}
{#- Returns the key values (a combination of columns) held by more than one row. Grouping by the
    columns themselves costs about half of dbt's `unique` on a concatenated string, which builds a
    string per row; and a NULL in a key column is a key value like any other, not a pass. -#}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
