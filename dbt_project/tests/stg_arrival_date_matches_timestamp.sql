{{ config(meta={'description': "Each raw file sits in the Hive folder of its rows' arrival date."}) }}
-- stg_queries takes arrival_date from the raw zone's Hive folder (so filters skip folders); it must
-- equal the date of arrival_timestamp, as the raw-zone contract says. Returns the rows where not.

select raw_file, arrival_date, arrival_timestamp
from {{ ref('stg_queries') }}
where {{ partition_window('arrival_date') }}
  and arrival_date <> cast(arrival_timestamp as date)
