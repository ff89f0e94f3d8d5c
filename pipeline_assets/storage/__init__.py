"""Where the zones live: a local folder or an S3 bucket (REDSET_STORAGE_URL, per-zone overrides), the file
system for either, and the check that storage answers before anything is consumed. A shared layer beside
the top-level modules: settings resolves its zone folders here. May import: nothing of the package
(settings imports it)."""
