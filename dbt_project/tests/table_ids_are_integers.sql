{{ config(severity='warn', meta={'description': 'Every id in read_table_ids / write_table_ids is an integer.'}) }}
-- flattened_table_access leaves out tokens that are not integers; this reports them, so they are
-- seen instead of silently lost. A warning: one odd id should not block the marts.

with queries as (

    select deployment, instance_id, query_id,
        {{ list_filter(table_ids('read_table_ids'), 'try_cast(x as bigint) is null') }} as bad_read,
        {{ list_filter(table_ids('write_table_ids'), 'try_cast(x as bigint) is null') }} as bad_write
    from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

)

-- Only the few queries with a bad token are unnested, not every id of every query.
select deployment, instance_id, query_id, {{ unnest(list_concat('bad_read', 'bad_write')) }} as token
from queries
where {{ list_len('bad_read') }} + {{ list_len('bad_write') }} > 0
