"""Moving a whole inventory between backends (SQLite, PostgreSQL)."""
