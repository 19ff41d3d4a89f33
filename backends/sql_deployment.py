"""How the SQL backend runs in several server processes (``serve --workers N``).

Several processes opening the same SQLite file or PostgreSQL database see one
store. Worker 0 runs the background maintenance (compaction and retention),
the others only serve requests. ``--workers 0`` (auto) runs one process per
core on PostgreSQL, and one on SQLite: its single write lock is taken in turn,
so two processes ingest less than one (measured).
"""

from __future__ import annotations

from remote_storage.backends.sql import SQLStorage
from remote_storage.backends.sql_dialect import Dialect, PostgreSQLDialect, SQLiteDialect
from remote_storage.deployment import Deployment
from remote_storage.storage import RemoteStorage

__all__ = ["POSTGRESQL", "SQLITE"]


def maintenance_in_first_worker(storage: RemoteStorage, index: int, count: int) -> None:
    """Worker 0 runs compaction and retention; the others only serve requests."""
    if isinstance(storage, SQLStorage):
        storage.maintenance = index == 0


def _deployment(dialect: Dialect) -> Deployment:
    return Deployment(
        shared_by_processes=True,
        default_workers=dialect.default_workers(),
        configure_worker=maintenance_in_first_worker,
    )


SQLITE = _deployment(SQLiteDialect())
POSTGRESQL = _deployment(PostgreSQLDialect())
