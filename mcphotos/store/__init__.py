"""The store: SQLite schema and migrations, the writer lock, the ANN cache, checks and repair."""
