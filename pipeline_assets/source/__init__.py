"""Where rows come from: real Redset parquet (reader) or seeded synthetic rows (generator).

Both produce pyarrow data typed to schema.ARROW_SCHEMA, in arrival order:
- reader.iter_batches(path_or_url, limit=, instances=, deployment=) streams a Redset file;
- conform.conform(table, name, deployment) types any table (parquet, CSV, NDJSON) to the schema;
- fetch.download(url) fetches a URL once into data/cache/ (reader does it for an https source);
- generator.generate(rows, seed) builds rows with Redset's shapes; generator.write() saves them.

May import: the shared top-level modules only."""
