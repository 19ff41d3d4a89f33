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

Writes. One writer thread per process (:mod:`.sql_writer`) owns one
connection and applies write requests in *groups*, each request in its own
savepoint, all acknowledged after the one commit: a 2xx means durable (SQLite
runs in WAL mode with ``synchronous=FULL``; ``normal`` survives a crash of the
process but not of the machine). It survives database outages: writes
meanwhile are answered 503 at once, and it reconnects by itself. What a write
does in its transaction (series ids, "insert or ignore", the bit-for-bit
conflict rule) is :mod:`.sql_ingest`.

Reads run in a small thread pool, never on the event loop, each in one
snapshot; a database that cannot be reached makes them raise
StorageUnavailable (503). Matchers become SQL in :mod:`.sql_query`; results
stream in batches of series.

Maintenance compacts old rows into XOR chunks (:mod:`.sql_chunks`) and applies
retention, in short slices queued behind the writes, so ingestion never
waits for one long job.

The modules, by job: :mod:`.sql_dialect` (what differs between SQLite and
PostgreSQL), :mod:`.sql_schema` (tables, encodings, creation and migration),
:mod:`.sql_index` (the series index: tenants, pairs, series; :mod:`.sql_postings`, its
postings on SQLite), :mod:`.sql_writer`,
:mod:`.sql_ingest`, :mod:`.sql_query`, :mod:`.sql_chunks`;
this module wires them together behind :class:`SQLStorage`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from remote_storage.chunks import MAX_SAMPLES
from remote_storage.errors import StorageUnavailable
from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
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
from . import sql_dialect as dialects
from . import sql_maintenance as maintenance
from . import sql_schema as schema
from .sql_index import PairCache
from .sql_ingest import Ingest
from .sql_maintenance import COMPACT_ROWS
from .sql_query import fetch, select_series
from .sql_schema import DatabaseMismatch
from .sql_writer import Writer, database_unavailable

__all__ = ["DatabaseMismatch", "SQLStorage"]

log = logging.getLogger("remote_storage.backends.sql")

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
#: Series fetched per read query round trip.
READ_BATCH = 500
#: Batches of a read query read at once, ahead of the one being answered, when the query's range
#: reaches the head (rows and blocks, whose reading runs inside SQLite with the interpreter lock
#: released, so two reads use two cores); one otherwise (chunks are handed over as stored, and a
#: second reader would only contend with the answer for the interpreter).
HEAD_READ_AHEAD = 2
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

_T = TypeVar("_T")


class SQLStorage(RemoteStorage):
    """Samples in SQLite or PostgreSQL. See the module docstring for the design."""

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
        #: what differs between SQLite and PostgreSQL (see :mod:`.sql_dialect`)
        self.dialect = dialects.for_url(url)
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None  # the same as _engine on PostgreSQL
        self._writer: Writer | None = None
        self._ingest = Ingest(self.dialect)
        self._pairs = PairCache()  # label pairs met by reads, to rebuild label sets
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        self._maintenance: asyncio.Task[None] | None = None

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
        parsed = dialects.for_url(url).driver_url(url, parsed, _OPTIONS)
        parsed = parsed.difference_update_query(_OPTIONS)
        return cls(parsed.render_as_string(hide_password=False), **kwargs)

    def describe(self) -> str:
        retention = f", retention {self.retention:g}s" if self.retention else ""
        return f"sql ({self.dialect.name} {self.dialect.location(self.url)}{retention})"

    def _where(self) -> str:
        return f"database {redact_url(self.url)}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        engine, read_engine = await loop.run_in_executor(
            None,
            functools.partial(
                self.dialect.create_engines, self.url, pool_size=self.pool_size, synchronous=self.synchronous
            ),
        )
        await loop.run_in_executor(None, schema.open_schema, engine, self.dialect, self._where())
        self._engine, self._read_engine = engine, read_engine
        self._readers = concurrent.futures.ThreadPoolExecutor(self.pool_size, thread_name_prefix="sql-read")
        self._writer = Writer(
            engine,
            self._ingest.apply_group,
            where=self._where(),
            timeout=self.write_timeout,
            ping_interval=self.dialect.ping_interval,
        )
        self._writer.start()
        self._ingest.newest = await loop.run_in_executor(self._readers, self.in_snapshot, _newest_row)
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

    @property
    def engine(self) -> Engine:
        """The writer's engine (its connections take the write lock: SQLite ``BEGIN IMMEDIATE``)."""
        if self._engine is None:
            raise StorageUnavailable("the SQL backend is not open")
        return self._engine

    @property
    def read_engine(self) -> Engine:
        """The engine of the read pool (on PostgreSQL the writer's own)."""
        if self._read_engine is None:
            raise StorageUnavailable("the SQL backend is not open")
        return self._read_engine

    # -- writes --------------------------------------------------------------

    @property
    def writer(self) -> Writer:
        """The group-commit writer every change goes through (:mod:`.sql_writer`); StorageUnavailable
        before :meth:`start`."""
        if self._writer is None:
            raise StorageUnavailable("the SQL backend is not open")
        return self._writer

    def unavailable(self) -> str | None:
        """Why writes cannot be taken now: the writer's connection is down, or stalled."""
        if self._writer is None:
            return "the SQL backend is not open"
        return self._writer.unavailable()

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        job = self._ingest.job(ctx.tenant, request)
        if job is None:
            return
        remaining = ctx.remaining()
        await self.writer.run(job, None if remaining is None else min(remaining, self.write_timeout))

    # -- reads ---------------------------------------------------------------

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        loop = asyncio.get_running_loop()

        def candidates_and_head(conn: Connection) -> tuple[list[tuple[int, bytes]], bool]:
            found = select_series(conn, ctx.tenant, query.matchers, ctx.deadline, self._pairs)
            return found, bool(found) and bool(schema.generations_in(conn, query.start_ms, query.end_ms))

        candidates, in_head = await loop.run_in_executor(self._readers, self.in_snapshot, candidates_and_head)
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
            return loop.run_in_executor(self._readers, self.in_snapshot, read_batch, batch)

        # Batches are read ahead while the caller consumes the current one, so the database and
        # the encoding of the answer overlap (and, in the head, two reads: HEAD_READ_AHEAD); at
        # most ahead + 1 batches are held.
        chunked = query.accept_chunks
        ahead = HEAD_READ_AHEAD if in_head else 1
        pending: collections.deque[asyncio.Future[list[TimeSeries]]] = collections.deque()
        start = 0

        def read_ahead() -> None:
            nonlocal start
            while start < len(candidates) and len(pending) < ahead:
                pending.append(submit(start))
                start += READ_BATCH

        try:
            read_ahead()
            while pending:
                series = await pending.popleft()
                read_ahead()
                for one in series:
                    yield one
        finally:
            for future in pending:  # the caller stopped early: drop the batches read ahead
                future.cancel()

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
            self._readers, self.in_snapshot, select_series, ctx.tenant, matchers, ctx.deadline, self._pairs
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
            for blob in await loop.run_in_executor(self._readers, self.in_snapshot, with_data, batch):
                yield schema.decode_labels(blob, pairs)

    def in_snapshot(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run ``function(connection, *args)`` on a pooled connection (in a reader thread).

        Its statements all run in one transaction, begun here, so they see one
        snapshot of the database: a compaction that moves rows into chunks
        meanwhile is seen wholly or not at all (statements through the driver's
        own cursor would otherwise each run in a transaction of their own).
        A database that cannot be reached raises StorageUnavailable (503).
        """
        assert self._read_engine is not None
        with database_unavailable(self._where()), self._read_engine.connect() as conn:
            self.dialect.begin_read(conn)
            with conn.begin():
                return function(conn, *args)

    async def _in_reader(self, function: Callable[..., _T], *args: Any) -> _T:
        """:meth:`in_snapshot` in the reader pool."""
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self.in_snapshot, function, *args
        )

    # -- metadata and statistics --------------------------------------------

    async def metadata(self, ctx: Context) -> dict[str, MetricMetadata]:
        tenant = ctx.tenant

        def load(conn: Connection) -> dict[str, MetricMetadata]:
            m = schema.metric_metadata
            rows = conn.execute(select(m.c.family, m.c.type, m.c.help, m.c.unit).where(m.c.tenant == tenant))
            return {f: MetricMetadata(f, MetricType(t), h, u) for f, t, h, u in rows}

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
                newest = self._ingest.newest
                if newest is not None:
                    cutoff = newest - int(self.head * 1000)
                    await self.seal(newest, cutoff)
                    await self.compact(cutoff)
                if self.retention:
                    await self.apply_retention(int((time.time() - self.retention) * 1000))
            except StorageUnavailable as exc:
                log.warning("maintenance skipped: %s; will try again in %gs", exc, self.compact_interval)
            except Exception:
                log.exception("maintenance failed; will try again in %gs", self.compact_interval)

    async def seal(self, newest_ms: int, oldest_ms: int | None = None) -> int:
        """Seal the head rows of the minutes before the one before ``newest_ms``'s (and not before
        ``oldest_ms``'s) into blocks; return how many rows were sealed (:func:`.sql_maintenance.seal`)."""
        return await maintenance.seal(self.writer, self._in_reader, newest_ms, oldest_ms)

    async def compact(self, cutoff_ms: int, slice_size: int = 1000, max_rows: int = COMPACT_ROWS) -> int:
        """Move samples older than ``cutoff_ms`` into XOR chunks; return how many moved
        (:func:`.sql_maintenance.compact`)."""
        return await maintenance.compact(
            self.writer, self._in_reader, cutoff_ms, self.chunk_samples, slice_size, max_rows
        )

    async def apply_retention(self, cutoff_ms: int, slice_size: int = 1000) -> int:
        """Delete data older than ``cutoff_ms``; return the samples deleted (chunks: whole ones)
        (:func:`.sql_maintenance.apply_retention`)."""
        return await maintenance.apply_retention(self.writer, self._in_reader, cutoff_ms, slice_size)


def _newest_row(conn: Connection) -> int | None:
    """The newest sample timestamp in the row table (where compaction's cutoff starts from)."""
    s = schema.samples
    newest_generation = select(func.max(s.c.generation)).scalar_subquery()
    newest = select(func.max(s.c.ts)).where(s.c.generation == newest_generation)
    value = conn.execute(newest).scalar_one_or_none()
    return None if value is None else int(value)
