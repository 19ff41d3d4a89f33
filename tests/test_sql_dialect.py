"""The SQL dialect strategies (``backends/sql_dialect.py``), each on its own database.

Every test runs on SQLite and on PostgreSQL (``sql_storage_url``): the
strategy is picked from the URL, and what it promises (bulk "insert or
ignore" counts, upserts, parameter markers, a read's snapshot, the worker
count) holds on a real database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, Text

from remote_storage.backends import InvalidStorageURL, deployment_for
from remote_storage.backends import sql_dialect as dialects
from remote_storage.backends.sql import SQLStorage
from remote_storage.backends.sql_schema import driver_rows

_metadata = MetaData()
_pairs = Table(
    "t_pairs",
    _metadata,
    Column("k", BigInteger, primary_key=True, autoincrement=False),
    Column("v", Text, nullable=False),
)


@pytest.fixture
def engines(sql_storage_url: str) -> Iterator[tuple[dialects.Dialect, Engine, Engine]]:
    """The dialect of the URL, its writer and reader engines, and an empty table ``t_pairs``."""
    url = SQLStorage.from_url(sql_storage_url).url
    dialect = dialects.for_url(url)
    writer, reader = dialect.create_engines(url, pool_size=2, synchronous="full")
    _metadata.create_all(writer)
    try:
        yield dialect, writer, reader
    finally:
        if reader is not writer:
            reader.dispose()
        writer.dispose()


def test_the_dialect_is_chosen_by_the_url_and_matches_the_connection(
    engines: tuple[dialects.Dialect, Engine, Engine], sql_storage_url: str
) -> None:
    dialect, writer, _ = engines
    with writer.connect() as conn:
        assert dialects.of(conn) is dialect
        assert conn.dialect.name == dialect.name
    assert SQLStorage.from_url(sql_storage_url).dialect is dialect


def test_an_unknown_scheme_is_refused_with_the_schemes_taken() -> None:
    with pytest.raises(InvalidStorageURL, match="not sqlite or postgresql"):
        dialects.for_url("mysql://localhost/db")


def test_bulk_insert_or_ignore_counts_only_new_rows(engines: tuple[dialects.Dialect, Engine, Engine]) -> None:
    dialect, writer, _ = engines
    rows = [(n, f"v{n}") for n in range(700)]
    with writer.begin() as conn:
        assert dialect.insert_ignore_rows(conn, "t_pairs", ("k", "v"), rows) == 700
        again = [*rows[:300], (900, "new")]
        assert dialect.insert_ignore_rows(conn, "t_pairs", ("k", "v"), again) == 1
        columns = ([900, 901, 902], ["x", "y", "z"])  # one stored (900), two new
        assert dialect.insert_ignore_columns(conn, "t_pairs", ("k", "v"), columns) == 2
        stored = conn.execute(_pairs.select().order_by(_pairs.c.k)).all()
    assert [tuple(row) for row in stored] == [*rows, (900, "new"), (901, "y"), (902, "z")]


def test_insert_ignore_keeps_and_upsert_overwrites(engines: tuple[dialects.Dialect, Engine, Engine]) -> None:
    dialect, writer, _ = engines
    with writer.begin() as conn:
        conn.execute(dialect.insert_ignore(_pairs), [{"k": 1, "v": "first"}])
        conn.execute(dialect.insert_ignore(_pairs), [{"k": 1, "v": "ignored"}, {"k": 2, "v": "two"}])
        conn.execute(
            dialect.upsert(_pairs, ["k"], ["v"]), [{"k": 2, "v": "replaced"}, {"k": 3, "v": "three"}]
        )
        stored = dict(conn.execute(_pairs.select()).all())  # type: ignore[arg-type]
    assert stored == {1: "first", 2: "replaced", 3: "three"}


def test_statements_written_as_text_take_the_dialects_markers(
    engines: tuple[dialects.Dialect, Engine, Engine],
) -> None:
    dialect, writer, _ = engines
    with writer.begin() as conn:
        dialect.insert_ignore_rows(conn, "t_pairs", ("k", "v"), [(n, str(n)) for n in range(10)])
        mark = dialect.placeholder
        sql = f"SELECT k FROM t_pairs WHERE k IN ({dialect.marks(3)}) AND v <> {mark} ORDER BY k"
        assert [k for (k,) in driver_rows(conn, sql, [2, 5, 7, "5"])] == [2, 7]


def test_a_read_sees_one_snapshot(engines: tuple[dialects.Dialect, Engine, Engine]) -> None:
    """What ``begin_read`` (and SQLite's deferred reader) promise: a commit made meanwhile is unseen."""
    dialect, writer, reader = engines
    with writer.begin() as conn:
        conn.execute(_pairs.insert(), [{"k": 1, "v": "a"}])
    with reader.connect() as conn:
        dialect.begin_read(conn)
        with conn.begin():
            count = "SELECT count(*) FROM t_pairs"
            assert driver_rows(conn, count, [])[0][0] == 1
            with writer.begin() as other:
                other.execute(_pairs.insert(), [{"k": 2, "v": "b"}])
            assert driver_rows(conn, count, [])[0][0] == 1
    with reader.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t_pairs").scalar() == 2


def test_locks_are_taken_inside_a_write_transaction(engines: tuple[dialects.Dialect, Engine, Engine]) -> None:
    dialect, writer, _ = engines
    with writer.begin() as conn:
        dialect.lock_schema(conn)
        dialect.lock_generations(conn, "t_pairs")
        conn.execute(_pairs.insert(), [{"k": 1, "v": "a"}])
    with writer.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t_pairs").scalar() == 1


def test_worker_count_limits_and_writer_checks_are_the_dialects(sql_storage_url: str) -> None:
    storage = SQLStorage.from_url(sql_storage_url)
    dialect = storage.dialect
    assert deployment_for(sql_storage_url).default_workers == dialect.default_workers()
    expected: dict[str, tuple[int, Any, Any]] = {
        "sqlite": (1, None, None),
        "postgresql": (os.cpu_count() or 1, dialects.POSTGRESQL_INDEX_ENTRY_LIMIT, 5.0),
    }
    assert (dialect.default_workers(), dialect.index_entry_limit, dialect.ping_interval) == expected[
        dialect.name
    ]
