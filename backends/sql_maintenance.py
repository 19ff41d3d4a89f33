"""Maintenance of the SQL backend: sealing, compaction and retention, as short jobs queued behind
the writes.

Both work through the series ids in slices; each slice is one job of the
writer (:mod:`.sql_writer`), so ingestion never waits for one long
transaction. Sealing packs the head rows of past minutes into blocks
(:func:`.sql_head.seal`). Compaction moves rows into chunks (:func:`.sql_chunks.compact_slice`);
retention deletes rows and whole chunks older than its cutoff. After either,
the generations left empty are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection, func, select

from . import sql_head
from . import sql_schema as schema
from .sql_chunks import MIN_TIME, compact_slice, delete_chunks_before, drop_empty_generations
from .sql_writer import Job, Writer

__all__ = ["COMPACT_ROWS", "SEAL_ROWS", "SEAL_SERIES", "apply_retention", "compact", "seal"]

log = logging.getLogger("remote_storage.backends.sql")

#: Sample rows a compaction job aims at: a job holds the writes up while it runs (SQLite, 2,000
#: series x 7,200 rows in the head: 0.21 s on average, 0.37 s at most) and holds its rows in
#: memory. Whole series go into a job, one at least.
COMPACT_ROWS = 100_000
#: Series per sealing job: 100,000 series scraped every 15 s have 400,000 rows per generation, so a
#: job seals about 80,000 rows of each generation it finds.
SEAL_SERIES = 20_000
#: Rows a sealing job stops after (at the end of a generation): about 0.3 s of the writer's time.
SEAL_ROWS = 100_000
#: Series in the first compaction job, before the rows per series are known.
_FIRST_COMPACT_SERIES = 16

#: Runs ``function(connection)`` in one read transaction, off the event loop.
InReader = Callable[[Callable[[Connection], int]], Awaitable[int]]


async def seal(
    writer: Writer,
    in_reader: InReader,
    newest_ms: int,
    oldest_ms: int | None = None,
    slice_size: int = SEAL_SERIES,
    max_rows: int | None = None,
) -> int:
    """Seal the head rows of the generations before the one before ``newest_ms``'s into blocks
    (:func:`.sql_head.seal`); return how many rows were sealed. The newest two generations stay
    rows: the writes of the current minute, and of the previous one from slower senders.

    Generations before ``oldest_ms``'s are left as rows (compaction is about
    to move them into chunks: sealing them first would pack them twice). A
    job seals at most ``slice_size`` series and stops after the generation
    that took it past ``max_rows`` rows, so a backlog (hours of samples sent
    at once, as a sender catching up does) becomes many short jobs rather
    than one that holds every write up (``max_rows`` None: :data:`SEAL_ROWS`).
    """
    rows = SEAL_ROWS if max_rows is None else max_rows
    below = schema.generation(newest_ms) - 1
    first = None if oldest_ms is None else schema.generation(oldest_ms)

    highest = await in_reader(_max_id)
    total = 0
    low = 0
    while low <= highest:
        done: list[tuple[int, int | None]] = []

        def job(
            conn: Connection,
            _job: Job,
            low: int = low,
            start: int | None = first,
            done: list[tuple[int, int | None]] = done,
        ) -> None:  # sets ``done`` once, even when the group runs again
            done[:] = [sql_head.seal(conn, low, low + slice_size, below, start, rows)]

        await asyncio.wrap_future(writer.submit(Job(job)))
        count, resume = done[0]
        total += count
        if resume is None:  # this slice is sealed: the next one, from the first generation
            low += slice_size
            first = None if oldest_ms is None else schema.generation(oldest_ms)
        else:  # the same slice again, from where it stopped (a job seals one generation at least)
            first = resume
    return total


async def compact(
    writer: Writer,
    in_reader: InReader,
    cutoff_ms: int,
    chunk_samples: int,
    slice_size: int = 1000,
    max_rows: int = COMPACT_ROWS,
) -> int:
    """Move samples older than ``cutoff_ms`` into XOR chunks of at most ``chunk_samples``;
    return how many moved.

    Each job takes at most ``slice_size`` series, and as many as held
    about ``max_rows`` rows in the job before: a backlog (compaction
    resumed after a pause, a replay of old samples) becomes many short
    jobs instead of one that holds every write up and loads millions of
    rows into memory.
    """
    size = [min(_FIRST_COMPACT_SERIES, slice_size)]  # series in the next job

    def work(conn: Connection, low: int, high: int) -> tuple[int, int]:
        end = min(high, low + size[0])
        moved = compact_slice(conn, low, end, cutoff_ms, chunk_samples)[0]
        size[0] = max(1, min(slice_size, max_rows * (end - low) // max(moved, 1)))
        return moved, end

    moved = await _in_slices(writer, in_reader, work, slice_size)
    await _drop_empty_generations(writer, cutoff_ms)
    if moved:
        log.info("compaction moved %d samples older than %d into chunks", moved, cutoff_ms)
    return moved


async def apply_retention(writer: Writer, in_reader: InReader, cutoff_ms: int, slice_size: int = 1000) -> int:
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
        deleted += sql_head.trim_blocks(conn, low, high, cutoff_ms)
        return deleted + delete_chunks_before(conn, low, high, cutoff_ms), high

    deleted = await _in_slices(writer, in_reader, work, slice_size)
    await _drop_empty_generations(writer, cutoff_ms)
    if deleted:
        log.info("retention deleted %d samples older than %d", deleted, cutoff_ms)
    return deleted


async def _in_slices(
    writer: Writer,
    in_reader: InReader,
    work: Callable[[Connection, int, int], tuple[int, int]],
    slice_size: int,
) -> int:
    """Run ``work(conn, low, high)`` over the series ids in slices, each a job behind the writes.

    ``work`` returns what it counted and where it stopped (``high``, or
    before it: the next slice starts there).
    """

    highest = await in_reader(_max_id)
    total = 0
    low = 0
    while low <= highest:
        done: list[tuple[int, int]] = []

        def job(conn: Connection, _job: Job, low: int = low, done: list[tuple[int, int]] = done) -> None:
            done[:] = [work(conn, low, low + slice_size)]  # once, even when the group runs again

        await asyncio.wrap_future(writer.submit(Job(job)))
        count, end = done[0]
        total += count
        low = max(end, low + 1)
    return total


def _max_id(conn: Connection) -> int:
    """The highest series id (0 with no series)."""
    return int(conn.execute(select(func.coalesce(func.max(schema.series.c.id), 0))).scalar_one())


async def _drop_empty_generations(writer: Writer, cutoff_ms: int) -> None:
    """After compaction or retention: forget the emptied generations before the cutoff's."""

    def job(conn: Connection, _job: Job) -> None:
        drop_empty_generations(conn, schema.generation(cutoff_ms))

    await asyncio.wrap_future(writer.submit(Job(job)))
