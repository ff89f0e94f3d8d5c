{{ config(severity='warn', meta={'description': 'Every id in read_table_ids / write_table_ids is an integer.'}) }}
-- flattened_table_access leaves out tokens that are not integers; this reports them, so they are
-- seen instead of silently lost. A warning: one odd id should not block the marts.

with queries as (

    select * from {{ ref('clean_queries') }}
    where {{ partition_window('arrival_date') }}

),

tokens as (

    select deployment, instance_id, query_id, unnest({{ table_ids('read_table_ids') }}) as token
    from queries
    union all
    select deployment, instance_id, query_id, unnest({{ table_ids('write_table_ids') }}) as token
    from queries

)

select * from tokens
where try_cast(token as bigint) is null
