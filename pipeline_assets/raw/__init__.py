"""The raw zone shared by its two jobs (dump/ from Kafka, landing/ from files): the zone format, message
rules, dead letters. May import: storage/ and the shared top-level modules."""
