"""The PostgreSQL actions."""
