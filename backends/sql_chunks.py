"""The chunk table ``rs_chunks``: its rows' layout, their reads, and compaction, which writes them.

Every statement that names a column of ``rs_chunks`` is here. A row is
``(series_id, min_ts, max_ts, count, data)``: ``data`` is one XOR chunk of
``count`` samples from ``min_ts`` to ``max_ts``; a series' chunks never
overlap. Reads: :func:`chunk_rows` (as stored), :func:`encoded_chunks` (as
:class:`~remote_storage.storage.EncodedChunk`), :func:`load_chunks` (decoded
and trimmed to a range). Writes: :func:`compact_slice` and, for retention,
:func:`delete_chunks_before`.

Compaction: older samples move from ``rs_samples`` rows into XOR chunks. A
row per sample costs tens of bytes; an XOR chunk of hundreds of samples of a
regularly scraped series costs one to a few bytes per sample. The writer
thread compacts in slices of series ids, each slice one short transaction
queued behind the writes:

1. read the slice's samples older than the cutoff, in (series, time) order,
   from the rows and the sealed blocks (:mod:`.sql_head`);
2. merge each series' samples with its chunks they overlap, and with its last
   chunk when that one is not full (only the last: a refilled earlier one
   would overlap the chunks after it);
3. write the merged samples as chunks of at most ``chunk_samples`` (the
   backend's ``?chunk_samples=``, 480 by default), delete the
   chunks they replace and the moved rows.

``rs_meta.compacted_before`` records the highest cutoff used. A sample written
later with an older timestamp (late data, a retry of an old batch) is checked
against the chunks by :func:`drop_stored_in_chunks` before it is inserted, so
the (series, timestamp) uniqueness and the conflict rule hold across both
tables. Chunks never overlap, so reads only merge chunks with rows.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, exists, func, select, tuple_

from remote_storage.chunks import SAMPLES_PER_CHUNK, decode_chunk, encode_for_storage, split_into_chunks
from remote_storage.storage import EncodedChunk

from . import sql_head
from . import sql_schema as schema
from .sql_dialect import of
from .sql_schema import MAX_IN

__all__ = [
    "MIN_TIME",
    "NO_WATERMARK",
    "WATERMARK_KEY",
    "chunk_rows",
    "compact_slice",
    "delete_chunks_before",
    "drop_empty_generations",
    "drop_stored_in_chunks",
    "encoded_chunks",
    "load_chunks",
    "read_watermark",
]

WATERMARK_KEY = "compacted_before"
NO_WATERMARK = -(2**63)
MIN_TIME = -(2**63)

_Rows = list[tuple[int, int, int]]  # (series_id, ts, value bits)


def read_watermark(conn: Connection) -> int:
    """Samples older than this may be in chunks (``NO_WATERMARK`` before the first compaction)."""
    # Read at the start of every write transaction: spelled out in SQL to skip compiling a statement.
    query = f"SELECT value FROM {schema.meta.name} WHERE key = '{WATERMARK_KEY}'"
    value = conn.exec_driver_sql(query).scalar_one_or_none()
    return NO_WATERMARK if value is None else int(value)


def _write_watermark(conn: Connection, value: int) -> None:
    conn.execute(
        of(conn).upsert(schema.meta, ["key"], ["value"]), {"key": WATERMARK_KEY, "value": str(value)}
    )


def _decoded(data: bytes) -> tuple[array[int], array[int]]:
    timestamps, values = decode_chunk(bytes(data))
    bits = array("q")
    bits.frombytes(values.tobytes())
    return timestamps, bits


def chunk_rows(conn: Connection, ids: Sequence[int], start: int, end: int) -> list[Any]:
    """(series_id, min_ts, max_ts, data) of the chunks of ``ids`` overlapping ``[start, end]``."""
    rows: list[Any] = []
    dialect = of(conn)
    mark = dialect.placeholder
    collect = sql_head.has_c_functions(conn)
    for first in range(0, len(ids), MAX_IN):
        part = list(ids[first : first + MAX_IN])
        sql = (
            f"SELECT series_id, min_ts, max_ts, data FROM {schema.chunks.name} "
            f"WHERE series_id IN ({dialect.marks(len(part))}) AND max_ts >= {mark} AND min_ts <= {mark} "
            "ORDER BY series_id, min_ts"
        )
        if collect:  # one row for all (see sql_head.collected)
            sql = f"SELECT rs_collect(series_id, data, min_ts, max_ts) FROM ({sql})"
            found = schema.driver_rows(conn, sql, [*part, start, end])
            rows.extend(
                (series_id, min_ts, max_ts, data)
                for series_id, data, min_ts, max_ts in sql_head.collected(found, 2)
            )
        else:
            rows.extend(schema.driver_rows(conn, sql, [*part, start, end]))
    return rows


def encoded_chunks(
    conn: Connection, ids: Sequence[int], start: int, end: int
) -> dict[int, list[EncodedChunk]]:
    """The chunks of ``ids`` overlapping ``[start, end]`` as stored, by series id, in time order."""
    chunks: dict[int, list[EncodedChunk]] = {}
    current = None
    for series_id, min_ts, max_ts, data in chunk_rows(conn, ids, start, end):  # by series, in time
        if series_id != current:
            current = series_id
            series_chunks = chunks[series_id] = []
        series_chunks.append(EncodedChunk(min_ts, max_ts, bytes(data)))
    return chunks


def delete_chunks_before(conn: Connection, low: int, high: int, cutoff: int) -> int:
    """Delete the chunks of series ids in ``[low, high)`` whose samples are all older than
    ``cutoff``; return how many samples they held."""
    c = schema.chunks
    in_range = (c.c.series_id >= low, c.c.series_id < high, c.c.max_ts < cutoff)
    counted = conn.execute(select(func.coalesce(func.sum(c.c.count), 0)).where(*in_range)).scalar_one()
    conn.execute(c.delete().where(*in_range))
    return int(counted)


def load_chunks(
    conn: Connection, ids: Sequence[int], start: int, end: int
) -> dict[int, tuple[array[int], array[int]]]:
    """Chunked samples of the series in ``[start, end]``: series id -> (timestamps, value bits)."""
    found: dict[int, tuple[array[int], array[int]]] = {}
    for series_id, _, _, data in chunk_rows(conn, ids, start, end):
        timestamps, bits = _decoded(data)
        if timestamps[0] < start or timestamps[-1] > end:  # trim a chunk that sticks out
            first = bisect_left(timestamps, start)
            last = bisect_right(timestamps, end)
            if first == last:
                continue
            timestamps, bits = timestamps[first:last], bits[first:last]
        entry = found.get(series_id)
        if entry is None:
            found[series_id] = (timestamps, bits)
        else:
            entry[0].extend(timestamps)
            entry[1].extend(bits)
    return found


def drop_stored_in_chunks(
    conn: Connection, rows: _Rows, watermark: int, conflict: Callable[[int, int, int, int], Exception]
) -> _Rows:
    """Rows minus those already in chunks with the same bits; ``conflict(...)`` is raised for other bits.

    Only rows older than the watermark can meet a chunk, so the common case
    (every row newer) costs one comparison per row.
    """
    late = [row for row in rows if row[1] < watermark]
    if not late:
        return rows
    ids = sorted({row[0] for row in late})
    start = min(row[1] for row in late)
    end = max(row[1] for row in late)
    stored: dict[tuple[int, int], int] = {}
    for series_id, _, _, data in chunk_rows(conn, ids, start, end):
        timestamps, bits = _decoded(data)
        for t, b in zip(timestamps, bits, strict=True):
            stored[series_id, t] = b
    return sql_head.without_stored(rows, stored, conflict)


def compact_slice(
    conn: Connection,
    low: int,
    high: int,
    cutoff: int,
    chunk_samples: int = SAMPLES_PER_CHUNK,
) -> tuple[int, int]:
    """Compact the samples older than ``cutoff`` of series ids in ``[low, high)``.

    Chunks hold at most ``chunk_samples`` samples; a series' last chunk with
    fewer takes the next samples in (it is written again).

    Returns (samples moved, chunks written).
    """
    s, c = schema.samples, schema.chunks
    in_slice = (
        s.c.generation.in_(schema.generations_in(conn, MIN_TIME, cutoff - 1)),
        s.c.series_id >= low,
        s.c.series_id < high,
        s.c.ts < cutoff,
    )
    new: dict[int, tuple[array[int], array[int]]] = {}
    for series_id, ts, value in conn.execute(
        select(s.c.series_id, s.c.ts, s.c.value).where(*in_slice).order_by(s.c.series_id, s.c.ts)
    ):
        entry = new.get(series_id)
        if entry is None:
            entry = new[series_id] = (array("q"), array("q"))
        entry[0].append(ts)
        entry[1].append(value)
    if new:
        _delete_moved(conn, new, in_slice)  # before blocks join them: rows only
    sealed_before = sql_head.blocks_before(conn, low, high, cutoff)
    for series_id, sealed in sealed_before.items():
        entry = new.get(series_id)
        new[series_id] = sealed if entry is None else sql_head.merge([sealed, entry])
    if sealed_before:  # else no block holds a sample older than the cutoff
        sql_head.trim_blocks(conn, low, high, cutoff)
    if not new:
        _raise_watermark(conn, cutoff)
        return 0, 0
    earliest = min(entry[0][0] for entry in new.values())
    # Chunks to merge: those reaching into the new samples' time, and partial last chunks.
    existing: dict[int, list[tuple[int, bytes]]] = {}
    later = c.alias("later")
    is_last = ~exists().where(later.c.series_id == c.c.series_id, later.c.min_ts > c.c.min_ts)
    partial_last = (c.c.count < chunk_samples) & is_last
    for series_id, min_ts, max_ts, merge_into, data in conn.execute(
        select(c.c.series_id, c.c.min_ts, c.c.max_ts, partial_last, c.c.data)
        .where(c.c.series_id >= low, c.c.series_id < high, (c.c.max_ts >= earliest) | partial_last)
        .order_by(c.c.series_id, c.c.min_ts)
    ):
        # Only the last chunk of a series may take later samples in: the new chunks made of an
        # earlier one would overlap the chunks after it.
        if series_id in new and (max_ts >= new[series_id][0][0] or merge_into):
            existing.setdefault(series_id, []).append((min_ts, bytes(data)))
    chunk_rows = []
    replaced = []
    moved = 0
    for series_id, (timestamps, bits) in new.items():
        merged: dict[int, int] = {}
        for min_ts, data in existing.get(series_id, ()):
            replaced.append((series_id, min_ts))
            merged.update(zip(*_decoded(data), strict=True))
        for t, b in zip(timestamps, bits, strict=True):
            merged.setdefault(t, b)  # equal by construction; what is stored wins
        moved += len(timestamps)
        order = sorted(merged)
        values = array("d")
        values.frombytes(array("q", [merged[t] for t in order]).tobytes())
        for chunk in split_into_chunks(order, values, chunk_samples, encode=encode_for_storage):
            chunk_rows.append(
                {
                    "series_id": series_id,
                    "min_ts": chunk.min_time,
                    "max_ts": chunk.max_time,
                    "count": chunk.count,
                    "data": chunk.data,
                }
            )
    for first in range(0, len(replaced), MAX_IN):
        part = replaced[first : first + MAX_IN]
        conn.execute(c.delete().where(tuple_(c.c.series_id, c.c.min_ts).in_(part)))
    if chunk_rows:
        conn.execute(c.insert(), chunk_rows)
    _raise_watermark(conn, cutoff)
    return moved, len(chunk_rows)


def _delete_moved(conn: Connection, moved: dict[int, tuple[array[int], array[int]]], in_slice: Any) -> None:
    """Delete the sample rows just moved into chunks (how: :meth:`.Dialect.delete_moved`)."""
    generations: list[int] = []
    series_ids: list[int] = []
    timestamps: list[int] = []
    for series_id, (stamps, _) in moved.items():
        generations.extend(map(schema.generation, stamps))
        series_ids.extend([series_id] * len(stamps))
        timestamps.extend(stamps)
    of(conn).delete_moved(conn, schema.samples, in_slice, (generations, series_ids, timestamps))


def drop_empty_generations(conn: Connection, below: int) -> int:
    """Forget the generations before ``below`` that hold no rows any more; returns how many.

    The table is locked first (:meth:`.Dialect.lock_generations`), so that a
    writer adding a row to a generation being forgotten either commits before
    (its row is seen and the generation kept) or runs after (and records the
    generation again).
    """
    of(conn).lock_generations(conn, schema.generations.name)
    g, s, b = schema.generations, schema.samples, schema.blocks
    empty = ~exists().where(s.c.generation == g.c.generation) & ~exists().where(
        b.c.generation == g.c.generation
    )
    return int(conn.execute(g.delete().where(g.c.generation < below, empty)).rowcount)


def _raise_watermark(conn: Connection, cutoff: int) -> None:
    if read_watermark(conn) < cutoff:
        _write_watermark(conn, cutoff)
