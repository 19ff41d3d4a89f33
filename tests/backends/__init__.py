"""Tests of the storage backends: memory, SQLite and PostgreSQL."""
