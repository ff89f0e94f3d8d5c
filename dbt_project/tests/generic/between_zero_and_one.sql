{% test between_zero_and_one(model, column_name) %}
{#- Rows whose share or rate is outside [0, 1] (NULL passes: a share of nothing). -#}
select {{ column_name }}
from {{ model }}
where not ({{ column_name }} between 0 and 1)
{% endtest %}
