"""What differs between SQLite and PostgreSQL, as one strategy object per database.

The SQL backend picks its :class:`Dialect` once, from the URL's scheme
(:func:`for_url`) or from a connection (:func:`of`), and every module of the
backend asks it instead of testing the database's name. A dialect owns:

* the URL: options it refuses, the driver it names (:meth:`Dialect.driver_url`);
* the engines and connection set-up (:meth:`Dialect.create_engines`): SQLite's
  PRAGMAs and ``BEGIN IMMEDIATE`` writer, PostgreSQL's pool and keep-alives;
* bulk "insert or ignore" (:meth:`Dialect.insert_ignore_rows`) and the
  ``ON CONFLICT`` statements (:meth:`Dialect.insert_ignore`, :meth:`Dialect.upsert`);
* the parameter marker of statements written as text (:meth:`Dialect.marks`);
* the series index's statements (:mod:`.sql_index`): pairs and series looked
  up and added (:meth:`Dialect.find_pairs` and the like; one set-based
  statement each on PostgreSQL), its postings (:attr:`Dialect.keeps_postings`)
  and the locks series creation takes (:meth:`Dialect.lock_series`);
* locking: the schema lock of processes starting together, the lock compaction
  takes before it forgets generations, a read's isolation;
* limits: :attr:`Dialect.index_entry_limit` (PostgreSQL's B-tree entry bound);
* :meth:`Dialect.default_workers`, the server processes ``serve --workers 0`` runs.

Adding a database means one more subclass here, registered in :data:`DIALECTS`.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Connection, Engine, Select, bindparam, create_engine, event, func, select
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from remote_storage import native
from remote_storage.errors import CannotOpenStorage

from . import InvalidStorageURL, redact_url

__all__ = [
    "DIALECTS",
    "NATIVE_HEAD",
    "NATIVE_INDEX",
    "POSTGRESQL_INDEX_ENTRY_LIMIT",
    "SQLITE_ROWS_PER_STATEMENT",
    "Dialect",
    "PostgreSQLDialect",
    "SQLiteDialect",
    "for_url",
    "of",
]

#: Rows per multi-row INSERT on SQLite (fewer when the build allows fewer bound variables).
SQLITE_ROWS_PER_STATEMENT = 512
#: Key of a connection's ``info`` set when the C functions of ``_sql_head.c`` are installed on it
#: (see :mod:`.sql_head`).
NATIVE_HEAD = "rs_native_head"
#: Key of a connection's ``info`` set when ``rs_posting_ids`` of ``_sql_index.c`` is installed on it
#: (see :mod:`.sql_postings`).
NATIVE_INDEX = "rs_native_index"
#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Largest entry of a PostgreSQL B-tree index on the default 8 KiB pages (``BTMaxItemSize`` of
#: B-tree version 4, PostgreSQL 12 and later): a third of what a page holds after its header, three
#: line pointers and the B-tree's special space, less room for a heap TID (8192 - 40 - 16 = 8136;
#: 8136 / 3 = 2712; 2712 - 8 = 2704). A larger entry fails the insert (SQLSTATE 54000), whatever
#: the table's TOAST settings: index entries are never stored out of line.
POSTGRESQL_INDEX_ENTRY_LIMIT = 2704
#: PostgreSQL connection settings used unless the URL sets them: give up connecting after 5 s,
#: and notice a server that vanished without closing the connection (a dead network) in about
#: 30 s instead of the kernel's two hours.
#: Bytes of the SQLite file each reader connection maps (SQLite lowers it to its build's limit).
READER_MMAP_BYTES = 4 << 30

_POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
#: PostgreSQL advisory lock key held while the schema is checked or created.
_SCHEMA_LOCK = 0x72735F6D657461  # "rs_meta"
#: The pair ids packed in ``rs_series.pairs`` (:func:`.sql_index.pack_pairs`: zig-zag varints of
#: the differences between consecutive ids) as a bigint array.
_PAIR_IDS_FUNCTION = """
CREATE OR REPLACE FUNCTION rs_pair_ids(packed bytea) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ids bigint[] := '{}';
  previous bigint := 0;
  zigzag bigint := 0;
  shift int := 0;
  byte int;
BEGIN
  FOR i IN 0 .. length(packed) - 1 LOOP
    byte := get_byte(packed, i);
    zigzag := zigzag | ((byte & 127)::bigint << shift);
    IF byte < 128 THEN
      previous := previous + ((zigzag >> 1) # -(zigzag & 1));
      ids := ids || previous;
      zigzag := 0;
      shift := 0;
    ELSE
      shift := shift + 7;
    END IF;
  END LOOP;
  RETURN ids;
END
$$"""
#: Advisory locks (two-key form: this key, then a bucket) that series creation takes.
_SERIES_LOCK_SPACE = 0x72735F73  # "rs_s"
_SERIES_LOCKS = 64
#: How often an idle writer checks its PostgreSQL connection.
_POSTGRESQL_PING_INTERVAL = 5.0


class Dialect(ABC):
    """One database's way of doing what the SQL backend needs. Stateless: one instance serves all."""

    #: SQLAlchemy's name of the database (``conn.dialect.name``)
    name: ClassVar[str]
    #: the database's name in messages
    title: ClassVar[str]
    #: the driver's positional parameter marker, for statements written as text
    placeholder: ClassVar[str]
    #: how often an idle writer checks its connection (None: never)
    ping_interval: ClassVar[float | None] = None
    #: largest index entry in bytes (None: no limit); a label set that needs a larger one is refused
    index_entry_limit: ClassVar[int | None] = None
    #: whether the database may hold other programs' tables beside ours (else it must be empty or ours)
    shares_database: ClassVar[bool] = False
    #: whether the series index keeps its postings in ``rs_postings`` (else: :meth:`series_of_pairs`
    #: answers from an index of the database's own over ``rs_series.pairs``)
    keeps_postings: ClassVar[bool] = True
    _sqlalchemy: ClassVar[Any]  # the SQLAlchemy dialect module (its ``insert`` has ON CONFLICT)
    _open_failure: ClassVar[str]  # the line of :meth:`open_failure`, with {where} and {detail}

    # -- URL and engines -------------------------------------------------------

    @abstractmethod
    def driver_url(self, url: str, parsed: URL, options: Sequence[str]) -> URL:
        """The URL the driver gets (``options``, the backend's own, are still in it): checked,
        with the driver named. Raises InvalidStorageURL or CannotOpenStorage naming the fix."""

    @abstractmethod
    def location(self, url: str) -> str:
        """Where the data is, for the start-up line (no password)."""

    @abstractmethod
    def create_engines(self, url: str, *, pool_size: int, synchronous: str) -> tuple[Engine, Engine]:
        """The writer's engine and the engine of the read pool (possibly the same one)."""

    @abstractmethod
    def default_workers(self) -> int:
        """How many server processes ``serve --workers 0`` runs on this database."""

    def open_failure(self, where: str, exc: DBAPIError) -> str:
        """One line on why a database could not be opened, and what to do."""
        return self._open_failure.format(where=where, detail=" ".join(str(exc.orig).split()))

    # -- statements ------------------------------------------------------------

    def marks(self, count: int) -> str:
        """``count`` parameter markers separated by commas, for an IN list written as text."""
        return ", ".join([self.placeholder] * count)

    def insert(self, table: Any) -> Any:
        """The database's INSERT construct (it has ``on_conflict_do_nothing``/``_do_update``)."""
        return self._sqlalchemy.insert(table)

    def insert_ignore(self, table: Any) -> Any:
        """INSERT that skips rows whose key is stored already."""
        return self.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Any, keys: Sequence[str], columns: Sequence[str]) -> Any:
        """INSERT that, for a stored key, overwrites ``columns`` with the values sent."""
        statement = self.insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in columns}
        )

    def insert_ignore_columns(
        self, conn: Connection, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> int:
        """Bulk "insert or ignore" of rows given as columns of equal length; the count of new rows."""
        return self.insert_ignore_rows(conn, table, names, list(zip(*columns, strict=True)))

    @abstractmethod
    def insert_ignore_rows(
        self, conn: Connection, table: str, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """Bulk "insert or ignore" of rows given as tuples; the count of new rows."""

    def upsert_columns(
        self, conn: Connection, table: str, names: Sequence[str], keys: int, columns: Sequence[Sequence[Any]]
    ) -> None:
        """Bulk insert of rows given as columns of equal length, a row whose key (the first
        ``keys`` columns) is stored overwriting the other columns."""
        rows = list(zip(*columns, strict=True))
        if not rows:
            return
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(_upsert_statement(table, tuple(names), keys, 1), rows)
        finally:
            cursor.close()

    # -- locking ---------------------------------------------------------------

    def lock_schema(self, conn: Connection) -> None:  # noqa: B027 - optional hook
        """Inside the opening transaction: make processes starting together check the schema one
        at a time. (Nothing by default: a writer transaction already excludes the others.)"""

    def lock_generations(self, conn: Connection, table: str) -> None:  # noqa: B027 - optional hook
        """Before forgetting empty generations: keep writers out of ``table`` until the commit.
        (Nothing by default: one write transaction at a time.)"""

    def begin_read(self, conn: Connection) -> None:  # noqa: B027 - optional hook
        """Before a read's transaction begins: make all its statements see one snapshot."""

    def delete_moved(
        self, conn: Connection, table: Any, in_slice: Any, keys: Sequence[Sequence[int]]
    ) -> None:
        """Delete the sample rows compaction just read with ``in_slice`` and moved into chunks;
        ``keys`` are their (generation, series id, timestamp) columns. By default by the range:
        the write lock held since the read kept every other writer out."""
        conn.execute(table.delete().where(*in_slice))

    def series_of_pairs(self, conn: Connection, series: Any, pair_ids: Any) -> Any:
        """A query of the ids of the series holding any of ``pair_ids`` (a list of ids, or a
        one-column query of them). By default from the postings table (:mod:`.sql_postings`)."""
        from .sql_postings import series_of_pairs  # it builds on this module

        return series_of_pairs(conn, pair_ids)

    def create_series_index(self, conn: Connection) -> None:  # noqa: B027 - optional hook
        """After the series index's tables were created: what else the database's index needs.
        (Nothing by default.)"""

    # -- the series index (:mod:`.sql_index`) ------------------------------------

    @abstractmethod
    def find_pairs(
        self, conn: Connection, table: str, tenant: int, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """(name, value) -> id of the pairs of ``wanted`` that ``table`` holds for ``tenant``."""

    def add_pairs(
        self, conn: Connection, table: str, tenant: int, missing: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Insert the pairs ``missing`` (sorted; not found by :meth:`find_pairs`), ignoring those
        another writer stored meanwhile: (name, value) -> id of at least those it inserted."""
        self.insert_ignore_rows(
            conn, table, ("tenant_id", "name", "value"), [(tenant, n, v) for n, v in missing]
        )
        return self.find_pairs(conn, table, tenant, missing)

    @abstractmethod
    def find_series(
        self, conn: Connection, table: str, tenant: int, hashes: Sequence[int]
    ) -> dict[tuple[int, bytes], int]:
        """(hash, packed pair ids) -> id of the series of ``tenant`` with these label hashes."""

    @abstractmethod
    def add_series(
        self, conn: Connection, table: str, tenant: int, new: Sequence[tuple[int, bytes]]
    ) -> dict[tuple[int, bytes], int]:
        """Insert the series ``new`` (hash, packed pair ids), none of them stored (the caller holds
        :meth:`lock_series`): (hash, packed pair ids) -> the id each was given."""

    def lock_series(self, conn: Connection, hashes: Sequence[int]) -> None:  # noqa: B027 - optional hook
        """Before looking up and creating series with these label hashes (sorted): keep other
        writers from creating the same ones until the commit. (Nothing by default: one write
        transaction at a time.)"""

    def restart_ids(self, conn: Connection, table: str) -> None:  # noqa: B027 - optional hook
        """After rows were inserted into ``table`` with explicit ids: make new rows take ids after
        them. (Nothing by default: SQLite's rowids follow the largest one.)"""

    def free_key_name(self, conn: Connection, old: str, new: str) -> None:  # noqa: B027 - optional hook
        """After table ``old`` was renamed ``new`` for a migration: free its primary key's name for
        the table that takes the old name. (Nothing by default: the key has no name of its own.)"""


def _install_native_head(dbapi_connection: Any) -> bool:
    """Install the sample-row functions in C (``_sql_head.c``) on a SQLite connection; False when
    the extension was not built or cannot reach the connection's handle."""
    if native.IMPLEMENTATION != "c" or native.sql_head is None:
        return False
    return bool(native.sql_head.install(dbapi_connection))


def _install_postings(dbapi_connection: Any) -> bool:
    """Install the postings functions on a SQLite connection (:func:`.sql_postings.install`);
    True when ``rs_posting_ids`` is the C one."""
    from .sql_postings import install  # it builds on this module

    return install(dbapi_connection)


@functools.lru_cache(maxsize=64)
def _values_statement(table: str, columns: tuple[str, ...], rows: int, mark: str = "?") -> str:
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} ON CONFLICT DO NOTHING"


@functools.lru_cache(maxsize=64)
def _upsert_statement(table: str, columns: tuple[str, ...], keys: int, rows: int, mark: str = "%s") -> str:
    """INSERT of ``rows`` rows whose conflict on the first ``keys`` columns overwrites the others."""
    ignoring = _values_statement(table, columns, rows, mark).removesuffix(" DO NOTHING")
    updated = ", ".join(f"{name} = excluded.{name}" for name in columns[keys:])
    return f"{ignoring} ({', '.join(columns[:keys])}) DO UPDATE SET {updated}"


class SQLiteDialect(Dialect):
    """SQLite: one file, WAL mode, one writer connection and a pool of read-only readers."""

    name = "sqlite"
    title = "SQLite"
    placeholder = "?"
    _sqlalchemy: ClassVar[Any] = sqlite_dialect
    _open_failure = (
        "cannot open the SQLite {where}: {detail}; check the path given with --storage and its permissions"
    )

    def driver_url(self, url: str, parsed: URL, options: Sequence[str]) -> URL:
        unknown = sorted(set(parsed.query) - set(options))
        if unknown:
            raise InvalidStorageURL(
                url, f"unknown option {', '.join(unknown)}; the SQLite backend takes {', '.join(options)}"
            )
        check_sqlite_path(url, parsed.database)
        return parsed

    def location(self, url: str) -> str:
        return str(make_url(url).database)

    def create_engines(self, url: str, *, pool_size: int, synchronous: str) -> tuple[Engine, Engine]:
        """The writer's connections start their transactions with ``BEGIN IMMEDIATE``; readers
        keep ``pool_size`` connections open (with their page caches) and start plain deferred
        transactions, which read a snapshot of the WAL and never wait for the writer nor hold it up.
        """
        path = make_url(url).database
        if path and path != ":memory:":
            directory = Path(path).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CannotOpenStorage(
                    f"cannot create the directory {directory} of the SQLite database: {exc.strerror}; "
                    "choose another path with --storage, or let this user write there"
                ) from None
        writer = self._engine(create_engine(url, poolclass=NullPool), synchronous, reader=False)
        readers = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
        return writer, self._engine(readers, synchronous, reader=True)

    @staticmethod
    def _engine(engine: Engine, synchronous: str, *, reader: bool) -> Engine:
        setting = synchronous.upper()

        @event.listens_for(engine, "connect")
        def configure(dbapi_connection: Any, record: Any) -> None:
            # Let SQLAlchemy, not the driver, issue BEGIN, so savepoints work.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # 16 KiB pages (new databases only): half the B-tree depth of the default 4 KiB;
            # measured 1.5x the insert rate of the (series, timestamp) keyed sample rows.
            cursor.execute("PRAGMA page_size=16384")
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute(f"PRAGMA synchronous={setting}")  # FULL: commit is fsynced
            cursor.execute("PRAGMA busy_timeout=30000")  # other processes' writes: wait
            # Page cache: 64 MiB for the writer; 16 MiB per reader, whose large scans
            # would only churn a bigger one (the kernel caches the file as well).
            cursor.execute(f"PRAGMA cache_size={-16384 if reader else -65536}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            if reader:
                cursor.execute("PRAGMA query_only=1")
                # Readers map the file instead of copying each page out of the kernel's cache:
                # a read of the head (a seek per series into blocks and rows all over the file)
                # measured 1.3x faster. Mapped pages a read touched count in the process' RSS
                # but are the kernel's file cache, dropped under memory pressure. SQLite's
                # caveat: an I/O error in a mapped page ends the process instead of failing a
                # statement; what was acknowledged is committed by then, senders retry the rest.
                cursor.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
            cursor.close()
            record.info[NATIVE_HEAD] = _install_native_head(dbapi_connection)
            record.info[NATIVE_INDEX] = _install_postings(dbapi_connection)

        @event.listens_for(engine, "begin")
        def begin(connection: Connection) -> None:
            # Writer: IMMEDIATE takes the write lock at once instead of failing on upgrade.
            connection.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

        return engine

    def default_workers(self) -> int:
        """One: SQLite's single write lock the processes would only take turns at (measured: two
        processes ingest less than one)."""
        return 1

    def insert_ignore_columns(
        self, conn: Connection, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> int:
        """Multi-row ``VALUES`` statements through the driver.

        Not ``executemany``: it hands the interpreter lock back and forth once
        per row, and while the event loop thread decodes the next request the
        writer waits for the lock at every row (measured: a busy second
        thread cut ``executemany`` to about 1% of its speed, and multi-row
        statements to 27%). A statement of N rows binds them all and then runs
        with the lock released. Statements have power-of-two row counts, so a
        handful of texts covers every size and the driver's statement cache
        keeps them compiled. Each statement's parameters are laid out by slice
        assignments, one per column, which the interpreter does in C: no tuple
        per row.
        """
        return _values_in_statements(conn, table, names, columns, None)

    def upsert_columns(
        self, conn: Connection, table: str, names: Sequence[str], keys: int, columns: Sequence[Sequence[Any]]
    ) -> None:
        """Multi-row ``VALUES`` statements, as :meth:`insert_ignore_columns`."""
        _values_in_statements(conn, table, names, columns, keys)

    def insert_ignore_rows(
        self, conn: Connection, table: str, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """:meth:`insert_ignore_columns` of the rows' columns."""
        if not rows:
            return 0
        return self.insert_ignore_columns(conn, table, names, list(zip(*rows, strict=True)))

    def find_pairs(
        self, conn: Connection, table: str, tenant: int, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """An IN list of values per name, as long as the build binds variables."""
        by_name: dict[str, list[str]] = {}
        for name, value in wanted:
            by_name.setdefault(name, []).append(value)
        found: dict[tuple[str, str], int] = {}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        most = _in_list_bound(cursor, 2)
        try:
            for name, values in by_name.items():
                for start in range(0, len(values), most):
                    part = values[start : start + most]
                    cursor.execute(
                        f"SELECT id, value FROM {table} WHERE tenant_id = ? AND name = ? "
                        f"AND value IN ({self.marks(len(part))})",
                        [tenant, name, *part],
                    )
                    for pair_id, value in cursor.fetchall():
                        found[name, value] = pair_id
        finally:
            cursor.close()
        return found

    def find_series(
        self, conn: Connection, table: str, tenant: int, hashes: Sequence[int]
    ) -> dict[tuple[int, bytes], int]:
        """An IN list of hashes, as long as the build binds variables."""
        found: dict[tuple[int, bytes], int] = {}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        most = _in_list_bound(cursor, 1)
        try:
            for start in range(0, len(hashes), most):
                part = hashes[start : start + most]
                cursor.execute(
                    f"SELECT id, hash, pairs FROM {table} WHERE hash IN ({self.marks(len(part))}) "
                    "AND tenant_id = ?",
                    [*part, tenant],
                )
                for series_id, hashed, packed in cursor.fetchall():
                    found[hashed, bytes(packed)] = series_id
        finally:
            cursor.close()
        return found

    def add_series(
        self, conn: Connection, table: str, tenant: int, new: Sequence[tuple[int, bytes]]
    ) -> dict[tuple[int, bytes], int]:
        """With ids given here, after the largest: the writer holds SQLite's write lock (``BEGIN
        IMMEDIATE``), so no other takes one meanwhile, and no lookup follows the insert."""
        first = int(conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").scalar_one())
        ids = range(first, first + len(new))
        columns = (ids, [tenant] * len(new), [hashed for hashed, _ in new], [packed for _, packed in new])
        self.insert_ignore_columns(conn, table, ("id", "tenant_id", "hash", "pairs"), columns)
        return dict(zip(new, ids, strict=True))


def _values_in_statements(
    conn: Connection, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]], keys: int | None
) -> int:
    """The rows (as columns) in SQLite statements of power-of-two row counts (see
    :meth:`SQLiteDialect.insert_ignore_columns`): ignoring stored keys, or with ``keys`` the
    count of key columns, overwriting the other columns of stored keys. The count of rows written."""
    count = len(columns[0]) if columns else 0
    if not count:
        return 0
    driver = conn.connection.driver_connection
    width = len(names)
    variables = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
    most = min(SQLITE_ROWS_PER_STATEMENT, variables // width)
    size = 1 << (max(most, 1).bit_length() - 1)
    cursor = driver.cursor()  # type: ignore[union-attr]
    inserted = 0
    try:
        start = 0
        while start < count:
            while size > count - start:
                size //= 2
            parameters: list[Any] = [None] * (size * width)
            for offset, column in enumerate(columns):
                parameters[offset::width] = column[start : start + size]
            statement = (
                _values_statement(table, tuple(names), size)
                if keys is None
                else _upsert_statement(table, tuple(names), keys, size, "?")
            )
            cursor.execute(statement, parameters)
            inserted += cursor.rowcount
            start += size
        return inserted
    finally:
        cursor.close()


def _in_list_bound(cursor: Any, others: int) -> int:
    """Values an IN list of a statement with ``others`` more variables may hold on SQLite."""
    return int(cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) - others


class PostgreSQLDialect(Dialect):
    """PostgreSQL through psycopg 3: one pooled engine, COPY for bulk inserts, advisory locks."""

    name = "postgresql"
    title = "PostgreSQL"
    placeholder = "%s"
    ping_interval = _POSTGRESQL_PING_INTERVAL
    index_entry_limit = POSTGRESQL_INDEX_ENTRY_LIMIT
    shares_database = True
    keeps_postings = False
    _sqlalchemy: ClassVar[Any] = postgresql_dialect
    _open_failure = (
        "cannot connect to the {where}: {detail}; check that PostgreSQL runs and accepts this user, "
        "and the URL given with --storage"
    )

    def driver_url(self, url: str, parsed: URL, options: Sequence[str]) -> URL:
        return parsed.set(drivername="postgresql+psycopg")

    def location(self, url: str) -> str:
        return redact_url(url)

    def create_engines(self, url: str, *, pool_size: int, synchronous: str) -> tuple[Engine, Engine]:
        """One pooled engine for the writer and the readers (``synchronous`` is SQLite's)."""
        try:
            import psycopg  # noqa: F401 - the driver SQLAlchemy loads for postgresql+psycopg
        except ModuleNotFoundError:
            raise CannotOpenStorage(
                "the PostgreSQL backend needs the psycopg driver, which is not installed: "
                "pip install 'prometheus-remote-storage[postgresql]'"
            ) from None
        engine = create_engine(
            url,
            pool_size=pool_size + 1,
            max_overflow=2,
            pool_pre_ping=True,
            connect_args=_postgresql_connect_args(make_url(url).query),
        )
        return engine, engine

    def default_workers(self) -> int:
        """One per core: PostgreSQL takes writes from many connections at once."""
        return os.cpu_count() or 1

    def insert_ignore_rows(
        self, conn: Connection, table: str, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO NOTHING."""
        columns = ", ".join(names)
        staging = f"{table}_staging"
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT {columns} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {staging}")
            with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ON CONFLICT DO NOTHING"
            )
            return int(cursor.rowcount)

    def lock_schema(self, conn: Connection) -> None:
        """Processes starting together (serve --workers N) create the schema once: the others
        wait here and then find it."""
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")

    def lock_generations(self, conn: Connection, table: str) -> None:
        """A writer adding a row to a generation being forgotten either commits before (its row
        is seen and the generation kept) or runs after (and records the generation again)."""
        conn.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def begin_read(self, conn: Connection) -> None:
        conn.execution_options(isolation_level="REPEATABLE READ")

    def delete_moved(
        self, conn: Connection, table: Any, in_slice: Any, keys: Sequence[Sequence[int]]
    ) -> None:
        """By the rows' keys: at READ COMMITTED the range would also take rows another process
        (``serve --workers``, a replica) committed since the read, which are in no chunk."""
        conn.exec_driver_sql(
            f"DELETE FROM {table.name} WHERE (generation, series_id, ts) IN "
            "(SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]))",
            tuple(keys),
        )

    def series_of_pairs(self, conn: Connection, series: Any, pair_ids: Any) -> Any:
        """From a GIN index over the pair ids each series holds: PostgreSQL's rows of a postings
        table cost about 76 bytes each (heap tuple and B-tree entry), its GIN posting lists a
        byte or two per series and pair."""
        if isinstance(pair_ids, Select):
            wanted: Any = pair_ids.with_only_columns(func.array_agg(*pair_ids.selected_columns))
            wanted = wanted.scalar_subquery()
        else:
            wanted = bindparam(None, list(pair_ids), type_=postgresql_dialect.ARRAY(BigInteger))
        return select(series.c.id).where(func.rs_pair_ids(series.c.pairs).op("&&")(wanted))

    def create_series_index(self, conn: Connection) -> None:
        """``rs_pair_ids(pairs)``: the packed pair ids (zig-zag varints of their differences) as an array,
        and the GIN index over it that :meth:`series_of_pairs` reads."""
        conn.exec_driver_sql(_PAIR_IDS_FUNCTION)
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS rs_series_pair_ids ON rs_series USING gin (rs_pair_ids(pairs))"
        )

    def find_pairs(
        self, conn: Connection, table: str, tenant: int, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """One statement, whatever the count: the pairs wanted as two arrays, joined to the table
        (an IN list per name and slice cost a round trip and a fresh plan each: 16,000 new
        series of 3 labels took 6.5 s)."""
        if not wanted:
            return {}
        names, values = zip(*wanted, strict=True)
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"SELECT p.id, p.name, p.value FROM unnest(%s::text[], %s::text[]) AS w(name, value) "
                f"JOIN {table} p ON p.tenant_id = %s AND p.name = w.name AND p.value = w.value",
                (list(names), list(values), tenant),
            )
            return {(name, value): pair_id for pair_id, name, value in cursor.fetchall()}

    def add_pairs(
        self, conn: Connection, table: str, tenant: int, missing: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """One ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING``, in key
        order (two writers adding overlapping pairs wait for each other in one order, never in
        a circle). A pair another writer inserted meanwhile is not returned: the caller looks
        it up (at READ COMMITTED the next statement sees it once that writer committed, and
        the insert waited for that)."""
        if not missing:
            return {}
        names, values = zip(*missing, strict=True)
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, name, value) SELECT %s::int, name, value "
                "FROM unnest(%s::text[], %s::text[]) AS w(name, value) ORDER BY name, value "
                "ON CONFLICT DO NOTHING RETURNING id, name, value",
                (tenant, list(names), list(values)),
            )
            return {(name, value): pair_id for pair_id, name, value in cursor.fetchall()}

    def find_series(
        self, conn: Connection, table: str, tenant: int, hashes: Sequence[int]
    ) -> dict[tuple[int, bytes], int]:
        """One statement: ``hash = ANY(array)``."""
        if not hashes:
            return {}
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"SELECT id, hash, pairs FROM {table} WHERE hash = ANY(%s::bigint[]) AND tenant_id = %s",
                (list(hashes), tenant),
            )
            return {(hashed, bytes(packed)): series_id for series_id, hashed, packed in cursor.fetchall()}

    def add_series(
        self, conn: Connection, table: str, tenant: int, new: Sequence[tuple[int, bytes]]
    ) -> dict[tuple[int, bytes], int]:
        """One ``INSERT ... SELECT FROM unnest(...) RETURNING`` (no second lookup)."""
        if not new:
            return {}
        hashes, packed = zip(*new, strict=True)
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"INSERT INTO {table} (tenant_id, hash, pairs) SELECT %s::int, hash, pairs "
                "FROM unnest(%s::bigint[], %s::bytea[]) AS w(hash, pairs) RETURNING id, hash, pairs",
                (tenant, list(hashes), list(packed)),
            )
            return {(hashed, bytes(ids)): series_id for series_id, hashed, ids in cursor.fetchall()}

    def lock_series(self, conn: Connection, hashes: Sequence[int]) -> None:
        """A transaction lock per bucket of hashes (:data:`_SERIES_LOCKS` of them, so a request of
        many new series takes a bounded number of PostgreSQL's shared lock slots), taken in order:
        two writers never wait for each other in a circle, and a writer that finds a series missing
        creates it before any other looks again. Series of one bucket merely take turns."""
        buckets = sorted({h % _SERIES_LOCKS for h in hashes})
        if buckets:
            conn.exec_driver_sql(
                "SELECT count(pg_advisory_xact_lock(%s, b)) FROM "
                "(SELECT b FROM unnest(%s::int[]) AS b ORDER BY b) AS sorted",
                (_SERIES_LOCK_SPACE, buckets),
            )

    def restart_ids(self, conn: Connection, table: str) -> None:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )

    def free_key_name(self, conn: Connection, old: str, new: str) -> None:
        """Also the id sequence's name, where the table has one."""
        conn.exec_driver_sql(f"ALTER INDEX {old}_pkey RENAME TO {new}_pkey")
        conn.exec_driver_sql(f"ALTER SEQUENCE IF EXISTS {old}_id_seq RENAME TO {new}_id_seq")


#: SQLAlchemy's name of a database -> its strategy
DIALECTS: dict[str, Dialect] = {d.name: d for d in (SQLiteDialect(), PostgreSQLDialect())}
#: URL schemes -> SQLAlchemy's name of the database
_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}


def for_url(url: str) -> Dialect:
    """The dialect of a storage URL (``sqlite://``, ``postgresql://``, ``postgres://``)."""
    try:
        scheme = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise InvalidStorageURL(url, str(exc)) from None
    name = _SCHEMES.get(scheme)
    if name is None:
        raise InvalidStorageURL(url, f"scheme {scheme!r} is not sqlite or postgresql")
    return DIALECTS[name]


def of(conn: Connection) -> Dialect:
    """The dialect of an open connection."""
    return DIALECTS[conn.dialect.name]


def _postgresql_connect_args(given: Any) -> dict[str, int]:
    """:data:`_POSTGRESQL_CONNECT_ARGS` less those the URL sets and those the driver's libpq lacks."""
    import psycopg  # the postgresql extra: imported only for a PostgreSQL URL

    found = {k: v for k, v in _POSTGRESQL_CONNECT_ARGS.items() if k not in given}
    if psycopg.pq.version() < 120000:  # tcp_user_timeout came with libpq 12
        found.pop("tcp_user_timeout", None)
    return found


def check_sqlite_path(url: str, path: str | None) -> None:
    """Refuse, with the reason and the fix, a SQLite path that cannot hold this database.

    Checked before anything is opened, so that a wrong ``--storage`` is one
    clear line rather than a driver's error from deep inside a connection.
    """
    if not path or path == ":memory:":
        raise InvalidStorageURL(
            url,
            "a SQLite URL needs a file path: sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    target = Path(path)
    if target.is_dir():
        raise CannotOpenStorage(
            f"--storage {url}: {target} is a directory; name a file in it, "
            f"e.g. {target / 'remote-storage.db'}"
        )
    for ancestor in target.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise CannotOpenStorage(
                    f"--storage {url}: {ancestor} is not a directory, so {target} cannot be created in it"
                )
            break
    if target.is_file() and target.stat().st_size:
        try:
            with target.open("rb") as file:
                header = file.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise CannotOpenStorage(f"--storage {url}: cannot read {target}: {exc.strerror}") from None
        if header != SQLITE_HEADER:
            raise CannotOpenStorage(
                f"--storage {url}: {target} is not a SQLite database; choose another path"
            )
