"""Storage plumbing: the engine and the unit of work (`database`), migrations, embedded PostgreSQL."""
