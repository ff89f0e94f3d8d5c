{% test values_between(model, column_name, low, high) %}
{#- Returns the rows whose `column_name` lies outside [low, high], both inclusive. NULL passes
    (not_null says whether it may be NULL); NaN fails, as it sorts above every number. -#}
select {{ column_name }}
from {{ model }}
where not ({{ column_name }} between {{ low }} and {{ high }})
{% endtest %}
