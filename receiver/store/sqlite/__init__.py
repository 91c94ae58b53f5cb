"""The SQLite state store (the default: one replica, one file)."""
