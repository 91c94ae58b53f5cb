"""The Redis state store (several replicas: every read-modify-write one Lua script)."""
