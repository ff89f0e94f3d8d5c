{% macro raw_zone_rows(table_name) -%}
  {#- Every row of one raw-zone source table, with the Parquet file it came from (`filename`). -#}
  {%- set relation = source('raw_zone', table_name) -%}
  {%- set node = graph.sources.get('source.' ~ project_name ~ '.raw_zone.' ~ table_name) if execute -%}
  {{ return(adapter.dispatch('raw_zone_rows')(relation, node)) }}
{%- endmacro %}


{% macro duckdb__raw_zone_rows(relation, node) -%}
  {#- The source is DuckDB's read_parquet over the glob (external_location in _sources.yml).
      read_parquet fails on a glob that matches no file, and the landing folder is often empty, so
      when nothing matches yet this returns a typed empty result built from the source's declared
      columns. stg_query_deliveries is a view re-created by every run, so new files are picked up. -#}
  {%- set empty -%}
    select
    {%- for column in (node.columns.values() if execute else []) %}
        cast(null as {{ column.data_type }}) as {{ column.name }},
    {%- endfor %}
        cast(null as varchar) as filename
    where false
  {%- endset -%}
  {%- if execute and raw_file_count(node.config.meta.raw_glob) == 0 -%}
    {{ empty }}
  {%- else -%}
    {#- Schema evolution: a column that no file has yet (replay_of in a zone written before it)
        comes from the typed empty side as NULL; union_by_name already fills it per file. -#}
    select * from {{ relation }}
    union all by name
    {{ empty }}
  {%- endif -%}
{%- endmacro %}


{% macro raw_file_topic_id(path) -%}
  {#- The Kafka topic id in a raw file's name, '<topic>-t<22-character id>-p<partition>-o<first>-<last>.parquet'
      (raw/dump/checkpoint.py); '' for a file written before topic ids, or a landing file. The same
      regexp_extract in DuckDB and Spark. -#}
  regexp_extract({{ path }}, '-t([A-Za-z0-9_-]{22})-p[0-9]+-o[0-9]+-[0-9]+[.]parquet$', 1)
{%- endmacro %}


{% macro raw_file_count(pattern) -%}
  {%- set result = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
  {{ return(result.columns[0].values()[0]) }}
{%- endmacro %}


{% macro spark__raw_zone_rows(relation, node) -%}
  {#- Spark reads the same Hive folders through an external catalog table per source, with the
      source's declared columns (so an empty or missing raw zone reads as no rows), keeping the
      files whose name matches its glob (in SQL: pathGlobFilter is not applied to a catalog
      table's partitions); arrival_date comes from the folder. The table is re-declared and its
      partitions (folders) re-listed each time the staging view is built. It is EXTERNAL (it has a
      LOCATION): dropping it never deletes raw files. The file path loses Spark's `file:` scheme. -#}
  {%- set glob = node.config.meta.raw_glob if execute else '' -%}
  {%- set table = target.schema ~ '.raw_zone_' ~ relation.identifier -%}
  {%- if execute -%}
    {%- set types = {'varchar': 'string', 'timestamp': 'timestamp_ntz'} -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
      {%- do columns.append(column.name ~ ' ' ~ types.get(column.data_type, column.data_type)) -%}
    {%- endfor -%}
    {%- do run_query('create schema if not exists ' ~ target.schema) -%}
    {%- do run_query('drop table if exists ' ~ table) -%}
    {%- do run_query('create table ' ~ table ~ ' (' ~ columns | join(', ') ~ ') using parquet'
        ~ " partitioned by (arrival_date) location '" ~ glob.split('/arrival_date=')[0] ~ "'") -%}
    {%- do run_query('alter table ' ~ table ~ ' recover partitions') -%}
  {%- endif -%}
    select * from (
        select *, regexp_replace(_metadata.file_path, '^file:(//)?', '') as filename from {{ table }}
    ) as files
    where regexp_extract(filename, '[^/]*$', 0) rlike '{{ glob_regex(glob.split('/')[-1]) }}'
{%- endmacro %}


{% macro glob_regex(glob) -%}
  {#- A file-name glob (*, ?, [...], [!...]) as an anchored regular expression. -#}
  {%- set out = namespace(text='^', bracket=false, previous='') -%}
  {%- for c in glob -%}
    {%- if out.bracket -%}
      {%- set out.text = out.text ~ ('^' if c == '!' and out.previous == '[' else c) -%}
      {%- set out.bracket = c != ']' or out.previous == '[' -%}
    {%- elif c == '[' -%}{%- set out.text = out.text ~ c -%}{%- set out.bracket = true -%}
    {%- elif c == '*' -%}{%- set out.text = out.text ~ '.*' -%}
    {%- elif c == '?' -%}{%- set out.text = out.text ~ '.' -%}
    {%- elif c in '.+()^$|{}' -%}{%- set out.text = out.text ~ '[' ~ c ~ ']' -%}
    {%- else -%}{%- set out.text = out.text ~ c -%}
    {%- endif -%}
    {%- set out.previous = c -%}
  {%- endfor -%}
  {{- out.text ~ '$' -}}
{%- endmacro %}
