-- Staged rows that break a rule, with the first rule they break as `reason`.

with staged as (

    select * from {{ ref('stg_queries') }}
    where {{ partition_window('arrival_date') }}

),

checked as (

    select *, {{ quarantine_reason() }} as reason
    from staged

)

select * from checked
where reason is not null
