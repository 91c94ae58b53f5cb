"""The state store: one protocol, its values, and the SQLite and Redis stores behind it."""
