"""The SQL backend: SQLite (embedded, the default) or PostgreSQL, through SQLAlchemy Core.

URLs::

    sqlite:///data/remote-storage.db        relative path (three slashes)
    sqlite:////var/lib/remote-storage.db    absolute path (four slashes)
    postgresql://user:password@host:5432/db (psycopg 3)

Options go in the URL's query string and are removed before the URL reaches
the database driver: ``retention`` (e.g. ``15d``; also set by ``serve
--retention``), ``synchronous`` (SQLite only: ``full``, the default, or
``normal``), ``pool_size`` (reader connections, default 4), ``head``,
``compact_interval``, ``chunk_samples`` (see compaction below) and
``write_timeout`` (longest a write waits for its commit, default 15 s).

Writes. One writer thread per process owns one connection and applies write
requests in *groups*: requests that arrive while a transaction is running are
coalesced into the next one, each inside its own savepoint (so a request that
conflicts is rolled back alone), and all of them are acknowledged after the
one commit. A request's write returns only after that commit, so a 2xx means
durable: SQLite runs in WAL mode with ``synchronous=FULL`` (the commit is
fsynced; ``normal`` survives a crash of the process but not of the machine),
PostgreSQL commits with its own durability settings. The writer thread
(:mod:`.sql_writer`) survives database outages: writes meanwhile are
answered 503 at once, and it reconnects by itself.

On PostgreSQL a new series whose label set could not fit an index entry
(2704 bytes) is refused with ``LabelSetTooLarge`` (400) before it is queued.

Samples are inserted with "insert or ignore" on their (series, timestamp)
key. When every sample was new, that is all; when some were already stored
(a retry, or a duplicate within the request), the request is rolled back to
its savepoint and its samples are compared bit for bit with what is stored:
identical samples are skipped, a different value raises SampleConflict.

Reads run in a small thread pool, never on the event loop; a database that
cannot be reached makes them raise StorageUnavailable (503). Equality and
inequality matchers become SQL over the postings table; regular expressions
are matched in Python with RE2, against the label values the database lists
(or the candidates' labels), and results stream in batches of series.

Retention deletes old samples in short slices queued behind writes, so
ingestion never waits for one long delete.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, func, select, tuple_
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from remote_storage.chunks import MAX_SAMPLES
from remote_storage.errors import CannotOpenStorage, LabelSetTooLarge, SampleConflict, StorageUnavailable
from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
    Exemplar,
    Labels,
    MetricMetadata,
    MetricType,
    Query,
    RemoteStorage,
    StorageStats,
    TimeSeries,
    WriteRequest,
)
from remote_storage.units import parse_duration

from . import InvalidStorageURL, redact_url
from . import sql_schema as schema
from .sql_compaction import (
    MIN_TIME,
    NO_WATERMARK,
    compact_slice,
    drop_empty_generations,
    drop_stored_in_chunks,
    read_watermark,
)
from .sql_query import MAX_IN, fetch, select_series
from .sql_writer import Job, Writer, database_unavailable

__all__ = ["DatabaseMismatch", "SQLStorage"]

log = logging.getLogger("remote_storage.backends.sql")

#: Rows per multi-row INSERT on SQLite (fewer when the build allows fewer bound variables).
SQLITE_ROWS_PER_STATEMENT = 512
#: Series ids remembered by encoding key and by label set (about 200 bytes each).
MAX_CACHED_IDS = 4_000_000
#: Samples per chunk that compaction writes (``?chunk_samples=``): two hours of a series scraped
#: every 15 s. A chunk row's key and record header take about 25 bytes, 0.05 bytes per sample at
#: 480 samples against 0.2 at Prometheus' 120, and packed chunks compress better the longer they
#: are (benchmark load: 1.75 B/sample at 120, 1.64 at 480, 1.63 at 960). Beyond 480, chunks of
#: noisy gauges pass 4 KB, a quarter of SQLite's 16 KiB page, where a row spills into overflow
#: pages that are mostly empty. Any count up to 65,535 is a valid XOR chunk for every reader of
#: streamed remote read.
CHUNK_SAMPLES = 480
#: Longest a write waits for its commit before it is answered 503 (``?write_timeout=``): well
#: under the 30 s Prometheus waits for an answer, so a sender hears "retry" rather than nothing.
WRITE_TIMEOUT = 15.0
#: PostgreSQL connection settings used unless the URL sets them: give up connecting after 5 s,
#: and notice a server that vanished without closing the connection (a dead network) in about
#: 30 s instead of the kernel's two hours.
_POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
#: Sample rows a compaction job aims at: a job holds the writes up while it runs (SQLite, 2,000
#: series x 7,200 rows in the head: 0.21 s on average, 0.37 s at most) and holds its rows in
#: memory. Whole series go into a job, one at least.
COMPACT_ROWS = 100_000
#: Series in the first compaction job, before the rows per series are known.
_FIRST_COMPACT_SERIES = 16
#: Series fetched per read query round trip.
READ_BATCH = 500
#: PostgreSQL advisory lock key held while the schema is checked or created.
_SCHEMA_LOCK = 0x72735F6D657461  # "rs_meta"
_SAMPLE_COLUMNS = ("generation", "series_id", "ts", "value")
#: URL query options the backend takes for itself.
_OPTIONS = (
    "retention",
    "synchronous",
    "pool_size",
    "head",
    "compact_interval",
    "chunk_samples",
    "write_timeout",
)


class DatabaseMismatch(CannotOpenStorage):
    """The database is not one this version can open (foreign, or a newer schema)."""


#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


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


_T = TypeVar("_T")
_Ids = dict[str, dict[Hashable, int]]  # tenant -> encoding key or label set -> series id


@functools.lru_cache(maxsize=64)
def _values_statement(table: str, columns: tuple[str, ...], rows: int) -> str:
    row = "(" + ", ".join("?" * len(columns)) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} ON CONFLICT DO NOTHING"


class _Dialect:
    """What differs between SQLite and PostgreSQL, decided once when the backend opens."""

    def __init__(self, name: str) -> None:
        self.name = name
        module: Any = sqlite_dialect if name == "sqlite" else pg_dialect
        self.insert = module.insert
        self.insert_ignore_rows = self._sqlite_rows if name == "sqlite" else self._postgresql_rows
        self.insert_ignore_columns = self._sqlite_columns if name == "sqlite" else self._postgresql_columns

    def insert_ignore(self, table: Any) -> Any:
        return self.insert(table).on_conflict_do_nothing()

    @classmethod
    def _sqlite_rows(
        cls, conn: Connection, table: str, names: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """:meth:`_sqlite_columns` for rows given as tuples."""
        if not rows:
            return 0
        return cls._sqlite_columns(conn, table, names, list(zip(*rows, strict=True)))

    @staticmethod
    def _sqlite_columns(
        conn: Connection, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> int:
        """Bulk "insert or ignore" of rows given as columns of equal length, through the driver, as
        multi-row ``VALUES`` statements; returns the count of new rows.

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
                cursor.execute(_values_statement(table, tuple(names), size), parameters)
                inserted += cursor.rowcount
                start += size
            return inserted
        finally:
            cursor.close()

    @classmethod
    def _postgresql_columns(
        cls, conn: Connection, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]
    ) -> int:
        return cls._postgresql_rows(conn, table, names, list(zip(*columns, strict=True)))

    @staticmethod
    def _postgresql_rows(
        conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> int:
        """COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO NOTHING."""
        names = ", ".join(columns)
        staging = f"{table}_staging"
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS SELECT {names} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {staging}")
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT DO NOTHING"
            )
            return int(cursor.rowcount)


class SQLStorage(RemoteStorage):
    """Samples in SQLite or PostgreSQL. See the module docstring for the design."""

    shared_by_processes = True

    def __init__(
        self,
        url: str,
        *,
        retention: float | None = None,
        synchronous: str = "full",
        pool_size: int = 4,
        head: float = 900.0,
        compact_interval: float = 60.0,
        chunk_samples: int = CHUNK_SAMPLES,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.url = url
        self.retention = retention
        self.synchronous = synchronous
        self.pool_size = pool_size
        self.head = head
        self.compact_interval = compact_interval
        self.chunk_samples = chunk_samples
        self.write_timeout = write_timeout
        self.maintenance = True  # compaction and retention run here (in one worker of several)
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None  # the same as _engine on PostgreSQL
        self._dialect: _Dialect | None = None
        self._writer: Writer | None = None
        self._index_limited = False  # PostgreSQL: label sets that cannot be indexed are refused
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._max_ts: int | None = None  # newest sample timestamp written (compaction follows it)
        self._watermark = NO_WATERMARK  # read at the start of every write transaction
        # per tenant, encoding key and label set -> series id; only ids of committed series
        self._ids: _Ids = {}
        self._cached = 0

    # -- opening and closing -------------------------------------------------

    @classmethod
    def from_url(cls, url: str, retention: float | None = None) -> SQLStorage:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise InvalidStorageURL(url, str(exc)) from None
        options = {key: str(value) for key, value in parsed.query.items()}
        kwargs: dict[str, Any] = {}
        try:
            if "retention" in options:
                kwargs["retention"] = parse_duration(options["retention"])
            if "synchronous" in options:
                kwargs["synchronous"] = options["synchronous"].lower()
                if kwargs["synchronous"] not in ("full", "normal"):
                    raise ValueError("synchronous must be full or normal")
            for name in ("head", "compact_interval", "write_timeout"):
                if name in options:
                    kwargs[name] = parse_duration(options[name])
                    if kwargs[name] <= 0:
                        raise ValueError(f"{name} must be positive")
            if "pool_size" in options:
                kwargs["pool_size"] = int(options["pool_size"])
                if kwargs["pool_size"] < 1:
                    raise ValueError("pool_size must be at least 1")
            if "chunk_samples" in options:
                kwargs["chunk_samples"] = int(options["chunk_samples"])
                if not 1 <= kwargs["chunk_samples"] <= MAX_SAMPLES:
                    raise ValueError(f"chunk_samples must be between 1 and {MAX_SAMPLES}")
        except ValueError as exc:
            raise InvalidStorageURL(url, str(exc)) from None
        if retention is not None:
            kwargs["retention"] = retention
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            unknown = sorted(set(parsed.query) - set(_OPTIONS))
            if unknown:
                raise InvalidStorageURL(
                    url,
                    f"unknown option {', '.join(unknown)}; the SQLite backend takes {', '.join(_OPTIONS)}",
                )
            check_sqlite_path(url, parsed.database)
        if backend in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif backend != "sqlite":
            raise InvalidStorageURL(url, f"scheme {parsed.drivername!r} is not sqlite or postgresql")
        parsed = parsed.difference_update_query(_OPTIONS)
        return cls(parsed.render_as_string(hide_password=False), **kwargs)

    def configure_worker(self, index: int, count: int) -> None:
        self.maintenance = index == 0

    def default_workers(self) -> int:
        """One per core on PostgreSQL; one on SQLite, whose single write lock the processes would
        only take turns at (measured: two processes ingest less than one)."""
        return 1 if self.url.startswith("sqlite") else os.cpu_count() or 1

    def describe(self) -> str:
        dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        retention = f", retention {self.retention:g}s" if self.retention else ""
        where = make_url(self.url).database if dialect == "sqlite" else redact_url(self.url)
        return f"sql ({dialect} {where}{retention})"

    def _create_engine(self, reader: bool = False) -> Engine:
        """The writer's engine, or (``reader``) the engine of the read pool.

        PostgreSQL uses one pooled engine for both. SQLite gets two: the
        writer's connections start their transactions with ``BEGIN
        IMMEDIATE``; readers keep ``pool_size`` connections open (with their
        page caches) and start plain deferred transactions, which read a
        snapshot of the WAL and never wait for the writer nor hold it up.
        """
        if self.url.startswith("sqlite"):
            path = make_url(self.url).database
            if path and path != ":memory:":
                directory = Path(path).parent
                try:
                    directory.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CannotOpenStorage(
                        f"cannot create the directory {directory} of the SQLite database: {exc.strerror}; "
                        "choose another path with --storage, or let this user write there"
                    ) from None
            if reader:
                engine = create_engine(self.url, pool_size=self.pool_size, max_overflow=self.pool_size)
            else:
                engine = create_engine(self.url, poolclass=NullPool)
            synchronous = self.synchronous.upper()

            @event.listens_for(engine, "connect")
            def configure(dbapi_connection: Any, record: Any) -> None:
                # Let SQLAlchemy, not the driver, issue BEGIN, so savepoints work.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                # 16 KiB pages (new databases only): half the B-tree depth of the default 4 KiB;
                # measured 1.5x the insert rate of the (series, timestamp) keyed sample rows.
                cursor.execute("PRAGMA page_size=16384")
                cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                cursor.execute(f"PRAGMA synchronous={synchronous}")  # FULL: commit is fsynced
                cursor.execute("PRAGMA busy_timeout=30000")  # other processes' writes: wait
                # Page cache: 64 MiB for the writer; 16 MiB per reader, whose large scans
                # would only churn a bigger one (the kernel caches the file as well).
                cursor.execute(f"PRAGMA cache_size={-16384 if reader else -65536}")
                cursor.execute("PRAGMA temp_store=MEMORY")
                if reader:
                    cursor.execute("PRAGMA query_only=1")
                cursor.close()

            @event.listens_for(engine, "begin")
            def begin(connection: Connection) -> None:
                # Writer: IMMEDIATE takes the write lock at once instead of failing on upgrade.
                connection.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

            return engine
        try:
            import psycopg  # noqa: F401 - the driver SQLAlchemy loads for postgresql+psycopg
        except ModuleNotFoundError:
            raise CannotOpenStorage(
                "the PostgreSQL backend needs the psycopg driver, which is not installed: "
                "pip install 'prometheus-remote-storage[postgresql]'"
            ) from None
        return create_engine(
            self.url,
            pool_size=self.pool_size + 1,
            max_overflow=2,
            pool_pre_ping=True,
            connect_args=_postgresql_connect_args(make_url(self.url).query),
        )

    def _open_schema(self, engine: Engine) -> None:
        """Create the tables in a new database, or check that an existing one is ours."""
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    # Processes starting together (serve --workers N) create the schema once:
                    # the others wait here and then find it. (SQLite: BEGIN IMMEDIATE does this.)
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                existing = set(conn.dialect.get_table_names(conn))
                if schema.meta.name in existing:
                    rows: dict[str, str] = {
                        k: v for k, v in conn.execute(select(schema.meta.c.key, schema.meta.c.value))
                    }
                    if rows.get("format") != schema.FORMAT:
                        raise DatabaseMismatch(f"{self._where()} has an rs_meta table of another program")
                    version = int(rows.get("schema_version", "0"))
                    if version > schema.SCHEMA_VERSION:
                        raise DatabaseMismatch(
                            f"{self._where()} has schema version {version}, newer than this "
                            f"remote-storage supports ({schema.SCHEMA_VERSION}); upgrade remote-storage"
                        )
                    if version == 1:
                        self._upgrade_from_1(conn)
                    elif version < schema.SCHEMA_VERSION:
                        raise DatabaseMismatch(f"{self._where()} has unknown old schema version {version}")
                    return
                ours = {t.name for t in schema.metadata.sorted_tables}
                if existing & ours:
                    raise DatabaseMismatch(f"{self._where()} has remote-storage tables but no rs_meta table")
                if existing and engine.dialect.name == "sqlite":
                    raise DatabaseMismatch(
                        f"{self._where()} is an SQLite database of another program "
                        f"(tables: {', '.join(sorted(existing)[:5])})"
                    )
                schema.metadata.create_all(conn)
                conn.execute(
                    schema.meta.insert(),
                    [
                        {"key": "format", "value": schema.FORMAT},
                        {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                    ],
                )
        except DBAPIError as exc:
            raise CannotOpenStorage(_open_failure(self._where(), engine.dialect.name, exc)) from None

    def _upgrade_from_1(self, conn: Connection) -> None:
        """Schema 1 -> 2: ``rs_samples`` gains the generation key, ``rs_generations`` appears.

        Runs in the opening transaction: a failure leaves the database at
        version 1, as it was.
        """
        log.warning("%s: upgrading the schema from version 1 to 2 (rs_samples is rewritten)", self._where())
        dialect = _Dialect(conn.dialect.name)
        conn.exec_driver_sql("ALTER TABLE rs_samples RENAME TO rs_samples_v1")
        if conn.dialect.name == "postgresql":  # the key's index keeps its name: free it for the new table
            conn.exec_driver_sql("ALTER INDEX rs_samples_pkey RENAME TO rs_samples_v1_pkey")
        schema.samples.create(conn)
        schema.generations.create(conn)
        result = conn.exec_driver_sql("SELECT series_id, ts, value FROM rs_samples_v1")
        seen: set[int] = set()
        while rows := result.fetchmany(10_000):
            keyed = [(schema.generation(ts), series_id, ts, value) for series_id, ts, value in rows]
            seen.update(row[0] for row in keyed)
            dialect.insert_ignore_rows(conn, schema.samples.name, _SAMPLE_COLUMNS, keyed)
        generations = [(g,) for g in sorted(seen)]
        dialect.insert_ignore_rows(conn, schema.generations.name, ("generation",), generations)
        conn.exec_driver_sql("DROP TABLE rs_samples_v1")
        m = schema.meta
        conn.execute(m.update().where(m.c.key == "schema_version").values(value=str(schema.SCHEMA_VERSION)))

    def _where(self) -> str:
        return f"database {redact_url(self.url)}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(None, self._create_engine)
        await loop.run_in_executor(None, self._open_schema, engine)
        self._engine = engine
        if engine.dialect.name == "sqlite":
            self._read_engine = await loop.run_in_executor(None, self._create_engine, True)
        else:
            self._read_engine = engine
        self._dialect = _Dialect(engine.dialect.name)
        self._index_limited = engine.dialect.name == "postgresql"
        self._readers = concurrent.futures.ThreadPoolExecutor(self.pool_size, thread_name_prefix="sql-read")
        self._writer = Writer(engine, self._attempt_group, where=self._where(), timeout=self.write_timeout)
        self._writer.start()
        self._max_ts = await loop.run_in_executor(self._readers, self._read, _newest_row)
        if self.maintenance:
            self._maintenance = asyncio.create_task(self._maintenance_loop())

    async def close(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        if self._read_engine is not None and self._read_engine is not self._engine:
            self._read_engine.dispose()
        if self._engine is not None:
            self._engine.dispose()

    # -- the writer's transactions -------------------------------------------

    def unavailable(self) -> str | None:
        """Why writes cannot be taken now: the writer's connection is down, or stalled."""
        if self._writer is None:
            return "the SQL backend is not open"
        return self._writer.unavailable()

    def _attempt_group(self, conn: Connection, group: list[Job]) -> list[BaseException | None]:
        """One transaction of a group, committed: each job's sample conflict, or None.

        The series ids it created are remembered once it committed (never
        before: a transaction that fails takes them with it).
        """
        outcomes: list[BaseException | None] = [None] * len(group)
        new_ids: _Ids = {}
        with conn.begin():
            self._watermark = read_watermark(conn)
            for job in group:
                if job.keys:
                    self._resolve_series(conn, job, new_ids)
            for index, job in enumerate(group):
                savepoint = conn.begin_nested()
                try:
                    job.apply(conn, job)
                except SampleConflict as exc:
                    savepoint.rollback()
                    outcomes[index] = exc
                else:
                    savepoint.commit()
        added = sum(map(len, new_ids.values()))
        if self._cached + added > MAX_CACHED_IDS:
            self._ids.clear()  # start over rather than grow without bound; ids are re-read on demand
            self._cached = 0
        for tenant, ids in new_ids.items():
            self._ids.setdefault(tenant, {}).update(ids)
        self._cached += added
        return outcomes

    def _resolve_series(self, conn: Connection, job: Job, new_ids: _Ids) -> None:
        """Fill ``job.ids``: look each series up by encoding key, then label set; create the missing."""
        cache = self._ids.get(job.tenant, {})
        pending = new_ids.setdefault(job.tenant, {})
        keys = job.keys
        # Looked up by write() on the event loop while this thread was in the database; the
        # series it did not find may have been created since.
        ids: list[Any] = job.ids if len(job.ids) == len(keys) else list(map(cache.get, keys))
        if None not in ids:
            job.ids = ids
            return
        missing: dict[Labels, list[int]] = {}
        for index, series_id in enumerate(ids):
            if series_id is not None:
                continue
            key = keys[index]
            series_id = cache.get(key) or pending.get(key)
            if series_id is None:
                labels = job.labels(index)
                series_id = cache.get(labels) or pending.get(labels)
                if series_id is None:
                    missing.setdefault(labels, []).append(index)
                    continue
                pending[key] = series_id
            ids[index] = series_id
        if missing:
            created = self._create_series(conn, [(job.tenant, labels) for labels in missing])
            for labels, indexes in missing.items():
                series_id = created[job.tenant, labels]
                pending[labels] = series_id
                for index in indexes:
                    ids[index] = series_id
                    pending[keys[index]] = series_id
        job.ids = ids

    def _create_series(
        self, conn: Connection, wanted: list[tuple[str, Labels]]
    ) -> dict[tuple[str, Labels], int]:
        assert self._dialect is not None
        found: dict[tuple[str, Labels], int] = {}
        by_tenant: dict[str, dict[bytes, Labels]] = {}
        for tenant, labels in wanted:
            by_tenant.setdefault(tenant, {})[schema.encode_labels(labels)] = labels
        for tenant, encoded in by_tenant.items():
            blobs = list(encoded)
            self._dialect.insert_ignore_rows(
                conn, schema.series.name, ("tenant", "labels"), [(tenant, blob) for blob in blobs]
            )
            for start in range(0, len(blobs), MAX_IN):
                part = blobs[start : start + MAX_IN]
                rows = conn.execute(
                    select(schema.series.c.id, schema.series.c.labels).where(
                        schema.series.c.tenant == tenant, schema.series.c.labels.in_(part)
                    )
                )
                for series_id, blob in rows:
                    found[tenant, encoded[bytes(blob)]] = series_id
            postings: list[tuple[str, str, str, int]] = []
            for labels in encoded.values():
                # One lookup per series: hashing a label set reads all of it, so a lookup per label
                # would make a series of N labels cost N^2 (40,000 labels: 18 s).
                series_id = found[tenant, labels]
                postings.extend((tenant, name, value, series_id) for name, value in labels)
            postings.sort()  # in key order: each B-tree page is visited once, not once per series
            self._dialect.insert_ignore_rows(
                conn, schema.postings.name, ("tenant", "name", "value", "series_id"), postings
            )
        return found

    def _submit(self, job: Job) -> concurrent.futures.Future[None]:
        """Queue a job for the writer; StorageUnavailable at once when it cannot take it."""
        if self._writer is None:
            raise StorageUnavailable("the SQL backend is not open")
        return self._writer.submit(job)

    # -- writes --------------------------------------------------------------

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        metadata = list(request.metadata)
        batch = request.batch
        if batch is not None:  # columns: no object per series on the way to the database
            if not batch.keys and not metadata:
                return
            keys = batch.keys

            def apply_batch(conn: Connection, job: Job) -> None:
                if job.ids:
                    self._insert_samples(conn, job, job.ids, batch.timestamps, batch.value_bits)
                self._write_metadata(conn, job, metadata)

            job = Job(apply_batch, ctx.tenant, keys, lambda index: batch.labels(keys[index]))
        else:
            series = request.series
            if not series and not metadata:
                return

            def apply(conn: Connection, job: Job) -> None:
                self._apply_write(conn, job, series)
                self._write_metadata(conn, job, metadata)

            job = Job(apply, ctx.tenant, [s.key for s in series], lambda index: series[index].labels)
        # Series ids this process knows, found here rather than in the writer thread, the one
        # that all writes wait for. The cache only grows between clears and ids never change.
        job.ids = list(map(self._ids.get(ctx.tenant, {}).get, job.keys))
        if self._index_limited:
            _check_index_limits(ctx.tenant, job, metadata)
        if self._writer is None:
            raise StorageUnavailable("the SQL backend is not open")
        remaining = ctx.remaining()
        await self._writer.run(job, None if remaining is None else min(remaining, self.write_timeout))

    def _apply_write(self, conn: Connection, job: Job, series: Sequence[TimeSeries]) -> None:
        assert self._dialect is not None
        ids: list[int] = []
        timestamps: list[int] = []
        values: list[float] = []
        hist_rows: list[dict[str, Any]] = []
        exemplar_rows: list[dict[str, Any]] = []
        for s, series_id in zip(series, job.ids, strict=True):
            ts = s.timestamps
            if len(ts) == 1:  # what Prometheus sends: one sample per series
                ids.append(series_id)
                timestamps.append(ts[0])
                values.append(s.values[0])
            elif ts:
                ids.extend([series_id] * len(ts))
                timestamps.extend(ts)
                values.extend(s.values)
            for h in s.histograms:
                data = schema.encode_histogram(h)
                hist_rows.append({"series_id": series_id, "ts": h.timestamp, "data": data})
            for e in s.exemplars:
                exemplar_rows.append(
                    {
                        "series_id": series_id,
                        "ts": e.timestamp,
                        "value": schema.signed_bits(e.value),
                        "labels": schema.encode_labels(e.labels),
                    }
                )
        if ids:
            self._insert_samples(conn, job, ids, timestamps, schema.floats_to_bits(values))
        if hist_rows:
            self._insert_histograms(conn, job, hist_rows)
        if exemplar_rows:
            conn.execute(self._dialect.insert_ignore(schema.exemplars), exemplar_rows)

    def _write_metadata(self, conn: Connection, job: Job, metadata: Sequence[MetricMetadata]) -> None:
        assert self._dialect is not None
        if metadata:
            statement = self._dialect.insert(schema.metric_metadata)
            statement = statement.on_conflict_do_update(
                index_elements=["tenant", "family"],
                set_={
                    "type": statement.excluded.type,
                    "help": statement.excluded.help,
                    "unit": statement.excluded.unit,
                },
            )
            latest = {m.family: m for m in metadata}
            conn.execute(
                statement,
                [
                    {
                        "tenant": job.tenant,
                        "family": m.family,
                        "type": int(m.type),
                        "help": m.help,
                        "unit": m.unit,
                    }
                    for m in latest.values()
                ],
            )

    def _insert_samples(
        self, conn: Connection, job: Job, ids: Sequence[int], timestamps: Sequence[int], bits: Sequence[int]
    ) -> None:
        assert self._dialect is not None
        newest = max(timestamps)
        if self._max_ts is None or newest > self._max_ts:
            self._max_ts = newest
        if min(timestamps) >= self._watermark:
            # The usual case: every sample newer than the chunks, so none can be stored in one.
            # Rows go from the columns to the statements without a tuple each.
            generations = list(map(schema.GENERATION_MS.__rfloordiv__, timestamps))
            count = len(generations)
            columns: tuple[Sequence[int], ...] = (generations, ids, timestamps, bits)
            rows: Sequence[tuple[int, int, int]] = ()
        else:

            def conflict(series_id: int, ts: int, stored: int, sent: int) -> Exception:
                return _conflict(job.labels_of(series_id), ts, stored, sent)

            given = list(zip(ids, timestamps, bits, strict=True))
            rows = drop_stored_in_chunks(conn, given, self._watermark, conflict)
            generations = [schema.generation(ts) for _, ts, _ in rows]
            count = len(rows)
            columns = (generations, *map(list, zip(*rows, strict=True))) if rows else ()
        if not count:
            return
        self._dialect.insert_ignore_rows(
            conn, schema.generations.name, ("generation",), [(g,) for g in sorted(set(generations))]
        )
        inserted = self._dialect.insert_ignore_columns(conn, schema.samples.name, _SAMPLE_COLUMNS, columns)
        if inserted == count:
            return
        if not rows:
            rows = list(zip(ids, timestamps, bits, strict=True))
        # Some samples were stored already (or sent twice): compare them bit for bit.
        wanted: dict[tuple[int, int], int] = {}
        for series_id, ts, value in rows:
            previous = wanted.setdefault((series_id, ts), value)
            if previous != value:
                raise _conflict(job.labels_of(series_id), ts, previous, value)
        stored = self._stored_values(conn, schema.samples, list(wanted))
        for key, value in wanted.items():
            if key in stored and stored[key] != value:
                raise _conflict(job.labels_of(key[0]), key[1], stored[key], value)

    def _stored_values(
        self, conn: Connection, table: Any, keys: list[tuple[int, int]]
    ) -> dict[tuple[int, int], Any]:
        stored: dict[tuple[int, int], Any] = {}
        column = table.c.value if "value" in table.c else table.c.data
        for start in range(0, len(keys), MAX_IN):
            part = keys[start : start + MAX_IN]
            if table is schema.samples:  # keyed by generation first
                where = tuple_(table.c.generation, table.c.series_id, table.c.ts).in_(
                    [(schema.generation(ts), series_id, ts) for series_id, ts in part]
                )
            else:
                where = tuple_(table.c.series_id, table.c.ts).in_(part)
            rows = conn.execute(select(table.c.series_id, table.c.ts, column).where(where))
            for series_id, ts, value in rows:
                stored[series_id, ts] = value
        return stored

    def _insert_histograms(self, conn: Connection, job: Job, rows: list[dict[str, Any]]) -> None:
        assert self._dialect is not None
        result = conn.execute(self._dialect.insert_ignore(schema.histograms), rows)
        if result.rowcount == len(rows):
            return
        wanted: dict[tuple[int, int], bytes] = {}
        for row in rows:
            key = (row["series_id"], row["ts"])
            previous = wanted.setdefault(key, row["data"])
            if previous != row["data"]:
                raise _histogram_conflict(job.labels_of(key[0]), key[1], previous, row["data"])
        stored = self._stored_values(conn, schema.histograms, list(wanted))
        for key, data in wanted.items():
            if key in stored and bytes(stored[key]) != data:
                raise _histogram_conflict(job.labels_of(key[0]), key[1], bytes(stored[key]), data)

    # -- reads ---------------------------------------------------------------

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        loop = asyncio.get_running_loop()
        candidates = await loop.run_in_executor(
            self._readers, self._read, select_series, ctx.tenant, query.matchers, ctx.deadline
        )
        # Label pairs decoded for this query, shared by its series (labels are decoded only when
        # asked for: the answer is written straight from the stored bytes).
        pairs: dict[tuple[bytes, bytes], tuple[str, str]] = {}

        def read_batch(conn: Connection, batch: list[tuple[int, bytes]]) -> list[TimeSeries]:
            found = fetch(conn, [series_id for series_id, _ in batch], query.start_ms, query.end_ms, chunked)
            series = []
            for series_id, blob in batch:
                data = found.get(series_id)
                if data is not None:
                    decode = functools.partial(schema.decode_labels, blob, pairs)
                    series.append(
                        TimeSeries.lazy(blob, decode, *data[:3], chunks=data[3], joined_labels=blob)
                    )
            return series

        def submit(start: int) -> asyncio.Future[list[TimeSeries]]:
            batch = candidates[start : start + READ_BATCH]
            return loop.run_in_executor(self._readers, self._read, read_batch, batch)

        # One batch is read ahead while the caller consumes the current one: the database and
        # the encoding of the answer overlap, and at most two batches are held.
        chunked = query.accept_chunks
        pending = submit(0) if candidates else None
        start = 0
        try:
            while pending is not None:
                series = await pending
                start += READ_BATCH
                pending = submit(start) if start < len(candidates) else None
                for one in series:
                    yield one
        finally:
            if pending is not None:  # the caller stopped early: drop the batch read ahead
                pending.cancel()

    async def series_labels(
        self, ctx: Context, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> AsyncIterator[Labels]:
        """Label sets of the matching series with data in the range, from the index.

        A range that covers every possible timestamp, on a database that keeps
        everything (no retention), needs no look at the samples: every series
        the index holds has some. Otherwise the series' rows and chunks in the
        range are looked up a batch at a time, chunks not decoded.
        """
        loop = asyncio.get_running_loop()
        candidates = await loop.run_in_executor(
            self._readers, self._read, select_series, ctx.tenant, matchers, ctx.deadline
        )
        pairs: dict[tuple[bytes, bytes], tuple[str, str]] = {}
        if start_ms <= -(2**53) and end_ms >= 2**53 and not self.retention:
            for _, blob in candidates:
                yield schema.decode_labels(blob, pairs)
            return

        def with_data(conn: Connection, batch: list[tuple[int, bytes]]) -> list[bytes]:
            found = fetch(conn, [series_id for series_id, _ in batch], start_ms, end_ms, True)
            return [blob for series_id, blob in batch if series_id in found]

        for start in range(0, len(candidates), READ_BATCH):
            batch = candidates[start : start + READ_BATCH]
            for blob in await loop.run_in_executor(self._readers, self._read, with_data, batch):
                yield schema.decode_labels(blob, pairs)

    def _read(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(connection, *args)`` on a pooled connection (in a reader thread).

        Its statements all run in one transaction, begun here, so they see one
        snapshot of the database: a compaction that moves rows into chunks
        meanwhile is seen wholly or not at all (statements through the driver's
        own cursor would otherwise each run in a transaction of their own).
        A database that cannot be reached raises StorageUnavailable (503).
        """
        assert self._read_engine is not None
        with database_unavailable(self._where()), self._read_engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return function(conn, *args)

    async def _in_reader(self, function: Callable[..., _T], *args: Any) -> _T:
        """:meth:`_read` in the reader pool."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, function, *args)

    # -- metadata and statistics --------------------------------------------

    async def metadata(self, ctx: Context) -> dict[str, MetricMetadata]:
        tenant = ctx.tenant

        def load(conn: Connection) -> dict[str, MetricMetadata]:
            m = schema.metric_metadata
            rows = conn.execute(select(m.c.family, m.c.type, m.c.help, m.c.unit).where(m.c.tenant == tenant))
            return {f: MetricMetadata(f, MetricType(t), h, u) for f, t, h, u in rows}

        return await self._in_reader(load)

    async def exemplars(self, tenant: str, series_labels: Labels) -> list[Exemplar]:
        def load(conn: Connection) -> list[Exemplar]:
            e, s = schema.exemplars, schema.series
            rows = conn.execute(
                select(e.c.ts, e.c.value, e.c.labels)
                .join(s, s.c.id == e.c.series_id)
                .where(s.c.tenant == tenant, s.c.labels == schema.encode_labels(series_labels))
                .order_by(e.c.ts)
            )
            return [
                Exemplar(schema.decode_labels(bytes(lb)), schema.bits_to_floats([v])[0], ts)
                for ts, v, lb in rows
            ]

        return await self._in_reader(load)

    async def stats(self) -> StorageStats:
        """The series count; nothing while the database is unavailable (a scrape still answers)."""
        try:
            return StorageStats(series=await self._series_count())
        except StorageUnavailable:
            return StorageStats()

    async def _series_count(self) -> int:
        def count(conn: Connection) -> int:
            return int(conn.execute(select(func.count()).select_from(schema.series)).scalar_one())

        return await self._in_reader(count)

    # -- maintenance: retention and compaction -------------------------------

    async def _maintenance_loop(self) -> None:
        """Compact every ``compact_interval``; apply retention when it is set."""
        while True:
            await asyncio.sleep(self.compact_interval)
            try:
                if self._max_ts is not None:
                    await self.compact(self._max_ts - int(self.head * 1000))
                if self.retention:
                    await self.apply_retention(int((time.time() - self.retention) * 1000))
            except StorageUnavailable as exc:
                log.warning("maintenance skipped: %s; will try again in %gs", exc, self.compact_interval)
            except Exception:
                log.exception("maintenance failed; will try again in %gs", self.compact_interval)

    async def _in_slices(
        self, work: Callable[[Connection, int, int], tuple[int, int]], slice_size: int
    ) -> int:
        """Run ``work(conn, low, high)`` over the series ids in slices, each a job behind the writes.

        ``work`` returns what it counted and where it stopped (``high``, or
        before it: the next slice starts there).
        """

        def max_id(conn: Connection) -> int:
            return int(conn.execute(select(func.coalesce(func.max(schema.series.c.id), 0))).scalar_one())

        highest = await self._in_reader(max_id)
        total = 0
        low = 0
        while low <= highest:
            done: list[tuple[int, int]] = []

            def job(conn: Connection, _job: Job, low: int = low, done: list[tuple[int, int]] = done) -> None:
                done[:] = [work(conn, low, low + slice_size)]  # once, even when the group runs again

            await asyncio.wrap_future(self._submit(Job(job)))
            count, end = done[0]
            total += count
            low = max(end, low + 1)
        return total

    async def compact(self, cutoff_ms: int, slice_size: int = 1000, max_rows: int = COMPACT_ROWS) -> int:
        """Move samples older than ``cutoff_ms`` into XOR chunks; return how many moved.

        Each job takes at most ``slice_size`` series, and as many as held
        about ``max_rows`` rows in the job before: a backlog (compaction
        resumed after a pause, a replay of old samples) becomes many short
        jobs instead of one that holds every write up and loads millions of
        rows into memory.
        """
        assert self._dialect is not None
        insert = self._dialect.insert

        size = [min(_FIRST_COMPACT_SERIES, slice_size)]  # series in the next job

        def work(conn: Connection, low: int, high: int) -> tuple[int, int]:
            end = min(high, low + size[0])
            moved = compact_slice(conn, insert, low, end, cutoff_ms, self.chunk_samples)[0]
            size[0] = max(1, min(slice_size, max_rows * (end - low) // max(moved, 1)))
            return moved, end

        moved = await self._in_slices(work, slice_size)
        await self._drop_empty_generations(cutoff_ms)
        if moved:
            log.info("compaction moved %d samples older than %d into chunks", moved, cutoff_ms)
        return moved

    async def apply_retention(self, cutoff_ms: int, slice_size: int = 1000) -> int:
        """Delete data older than ``cutoff_ms``; return the samples deleted (chunks: whole ones).

        Works through the series ids in slices, each its own short job behind
        the queued writes, so ingestion is never held up for long.
        """

        def work(conn: Connection, low: int, high: int) -> tuple[int, int]:
            deleted = 0
            generations = schema.generations_in(conn, MIN_TIME, cutoff_ms - 1)
            for table in (schema.samples, schema.histograms, schema.exemplars):
                conditions = [table.c.series_id >= low, table.c.series_id < high, table.c.ts < cutoff_ms]
                if table is schema.samples:
                    conditions.append(table.c.generation.in_(generations))
                result = conn.execute(table.delete().where(*conditions))
                if table is schema.samples:
                    deleted += result.rowcount
            c = schema.chunks
            counted = conn.execute(
                select(func.coalesce(func.sum(c.c.count), 0)).where(
                    c.c.series_id >= low, c.c.series_id < high, c.c.max_ts < cutoff_ms
                )
            ).scalar_one()
            conn.execute(c.delete().where(c.c.series_id >= low, c.c.series_id < high, c.c.max_ts < cutoff_ms))
            return deleted + int(counted), high

        deleted = await self._in_slices(work, slice_size)
        await self._drop_empty_generations(cutoff_ms)
        if deleted:
            log.info("retention deleted %d samples older than %d", deleted, cutoff_ms)
        return deleted

    async def _drop_empty_generations(self, cutoff_ms: int) -> None:
        """After compaction or retention: forget the emptied generations before the cutoff's."""

        def job(conn: Connection, _job: Job) -> None:
            drop_empty_generations(conn, schema.generation(cutoff_ms))

        await asyncio.wrap_future(self._submit(Job(job)))


def _postgresql_connect_args(given: Any) -> dict[str, int]:
    """:data:`_POSTGRESQL_CONNECT_ARGS` less those the URL sets and those the driver's libpq lacks."""
    import psycopg  # the postgresql extra: imported only for a PostgreSQL URL

    found = {k: v for k, v in _POSTGRESQL_CONNECT_ARGS.items() if k not in given}
    if psycopg.pq.version() < 120000:  # tcp_user_timeout came with libpq 12
        found.pop("tcp_user_timeout", None)
    return found


def _open_failure(where: str, dialect: str, exc: DBAPIError) -> str:
    """One line on why a database could not be opened, and what to do."""
    detail = " ".join(str(exc.orig).split())
    if dialect == "postgresql":
        return (
            f"cannot connect to the {where}: {detail}; check that PostgreSQL runs and accepts "
            "this user, and the URL given with --storage"
        )
    return (
        f"cannot open the SQLite {where}: {detail}; check the path given with --storage and its permissions"
    )


def _newest_row(conn: Connection) -> int | None:
    """The newest sample timestamp in the row table (where compaction's cutoff starts from)."""
    s = schema.samples
    newest_generation = select(func.max(s.c.generation)).scalar_subquery()
    newest = select(func.max(s.c.ts)).where(s.c.generation == newest_generation)
    value = conn.execute(newest).scalar_one_or_none()
    return None if value is None else int(value)


def _check_index_limits(tenant: str, job: Job, metadata: Sequence[MetricMetadata]) -> None:
    """Raise LabelSetTooLarge for a new series or metric family PostgreSQL could not index.

    Only series whose ids are not known yet are checked: the others are
    stored already, and the usual write costs nothing here.
    """
    limit = schema.POSTGRESQL_INDEX_ENTRY_LIMIT
    if None in job.ids:
        checked: set[Hashable] = set()
        for index, series_id in enumerate(job.ids):
            key = job.keys[index]
            if series_id is not None or key in checked:
                continue
            checked.add(key)
            labels = job.labels(index)
            oversized = schema.oversized_postgresql_entry(tenant, labels)
            if oversized is not None:
                name, size = oversized
                raise LabelSetTooLarge(f"label set {_brief(labels)}", size, limit, name, "PostgreSQL")
    tenant_bytes = len(tenant.encode())
    for m in metadata:
        size = schema.postgresql_index_entry_bytes(tenant_bytes, len(m.family.encode()))
        if size > limit:
            family = m.family if len(m.family) <= 100 else m.family[:100] + "..."
            raise LabelSetTooLarge(
                f"metric family name {family!r}", size, limit, "rs_metadata_pkey", "PostgreSQL"
            )


def _brief(labels: Labels, most: int = 200) -> str:
    """The label set as text, cut after ``most`` characters, with its label count."""
    text = str(labels)
    if len(text) > most:
        text = text[:most] + "..."
    return f"{text} ({len(labels)} labels)"


def _conflict(labels: Labels, timestamp: int, stored_bits: int, sent_bits: int) -> SampleConflict:
    stored, sent = schema.bits_to_floats([stored_bits, sent_bits])
    return SampleConflict(str(labels), timestamp, stored, sent)


def _histogram_conflict(labels: Labels, timestamp: int, stored: bytes, sent: bytes) -> SampleConflict:
    stored_sum = schema.decode_histogram(timestamp, stored).sum
    return SampleConflict(str(labels), timestamp, stored_sum, schema.decode_histogram(timestamp, sent).sum)
