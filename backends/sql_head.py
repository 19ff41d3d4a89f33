"""The head of the SQL backend: samples not yet compacted into chunks, as rows and sealed blocks.

A float sample arrives as one row ``(generation, series_id, ts, value)`` of
``rs_samples``, keyed in that order (:data:`~.sql_schema.GENERATION_MS` says
why the minute comes first: each write lands among the few rows of the
current minute). Once the writes have moved on, maintenance *seals* each
older generation (:func:`seal`): the rows of each series join its row of
``rs_blocks`` ``(series_id, generation, data)`` for the
:data:`BLOCK_GENERATIONS` generations that generation is one of (keyed by the
first of them, :func:`block_key`), where ``data`` packs the samples: the n
timestamps, then the n value bits, each a big-endian int64, in time order.
Blocks are keyed by series first, so a read of the newest 15 minutes of many
series costs one seek per series and one or two rows (instead of a seek per
series and minute and a row per sample); sealing, once a minute and in bulk,
pays for landing all over the table and for rewriting each series' block.
Compaction and retention take samples from both tables. A block may also be
keyed by the very generation it holds (sealed by an earlier version, one
block a minute): reads merge whatever blocks a series has in time order.

The rules of the rows hold across both tables: ``rs_meta.sealed_before``
says up to which timestamp samples may be in blocks, and a sample written
later with an older timestamp is checked against the blocks
(:func:`drop_stored_in_blocks`) before it is inserted as a row, so repeats
stay no-ops and a different value is still a conflict. The next seal merges
such a late row into its block.

On SQLite, the C functions of ``_sql_head.c`` (installed by the dialect
when it connects; :func:`has_c_functions`) do the per-sample work inside SQLite,
with the interpreter lock released: an insert binds a batch as three blobs
expanded by the table-valued ``rs_unpack``; sealing packs rows with the
aggregate ``rs_pack``; a read takes, per series id, its blocks (merged and
trimmed by ``rs_merge``) and its rows (``rs_pack``) as one blob (``rs_union``),
one statement for a batch of ids, and a streamed read has that blob encoded
into XOR chunks there too (``rs_chunks``, :func:`head_chunks`). Without them
(PostgreSQL, or SQLite without a C compiler at install time) rows are inserted
as multi-row statements, nothing is sealed, blocks found are decoded and
chunks encoded in Python; the results are the same, byte for byte.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from remote_storage.chunks import MAX_SAMPLES as MAX_CHUNK_SAMPLES
from remote_storage.chunks import SAMPLES_PER_CHUNK, split_into_chunks
from remote_storage.storage import EncodedChunk

from . import sql_schema as schema
from .sql_dialect import NATIVE_HEAD, Dialect, of

__all__ = [
    "BLOCK_GENERATIONS",
    "NOT_SEALED",
    "SEALED_KEY",
    "block_key",
    "blocks_before",
    "collected",
    "drop_stored_in_blocks",
    "has_c_functions",
    "head_chunks",
    "head_rows",
    "insert_rows",
    "merge",
    "migrate_head_2_to_3",
    "pack",
    "read_sealed",
    "seal",
    "trim_blocks",
    "unpack",
    "without_stored",
]

#: The rs_meta key of the timestamp before which samples may be in blocks.
SEALED_KEY = "sealed_before"
#: Before the first seal: no sample is in a block.
NOT_SEALED = -(2**63)

#: A batch whose timestamps span fewer generations than this records all of them in
#: ``rs_generations`` (found from the first and last); a longer span, only those it has samples in.
_SPAN_LISTED = 16

#: Generations (minutes) a series' block spans: a 15-minute read meets one or two blocks a series.
BLOCK_GENERATIONS = 16

_Columns = tuple["array[int]", "array[int]"]  # timestamps, value bits

_S, _B = schema.samples.name, schema.blocks.name
_INSERT = (
    f"INSERT INTO {_S} (generation, series_id, ts, value) "
    f"SELECT generation, series_id, ts, value FROM rs_unpack(?, ?, ?, {schema.GENERATION_MS}) "
    "WHERE true ON CONFLICT DO NOTHING"  # WHERE: the parser would read ON as a join's
)
_SEAL = (
    f"INSERT INTO {_B} (series_id, generation, data) "
    f"SELECT series_id, ?, rs_pack(ts, value) FROM {_S} "
    "WHERE generation = ? AND series_id >= ? AND series_id < ? GROUP BY series_id "
    f"ON CONFLICT DO UPDATE SET data = rs_union({_B}.data, excluded.data)"
)


def block_key(generation: int) -> int:
    """The generation a block holding samples of ``generation`` is keyed by."""
    return generation - generation % BLOCK_GENERATIONS


def _first_block(start: int) -> int:
    """The lowest key of a block that may hold samples at or after ``start``."""
    return block_key(schema.generation(start))


def has_c_functions(conn: Connection) -> bool:
    """Whether the C functions are installed on this connection."""
    return bool(conn.connection.info.get(NATIVE_HEAD))


def pack(timestamps: Sequence[int], bits: Sequence[int]) -> bytes:
    """A block's bytes: timestamps, then value bits, big-endian int64 (sorted, unique timestamps)."""
    both = array("q", timestamps)
    both.extend(array("q", bits))
    if sys.byteorder == "little":
        both.byteswap()
    return both.tobytes()


def unpack(data: bytes) -> _Columns:
    """Inverse of :func:`pack`."""
    both = array("q")
    both.frombytes(data)
    if sys.byteorder == "little":
        both.byteswap()
    half = len(both) // 2
    return both[:half], both[half:]


# -- writes --------------------------------------------------------------------------------


def insert_rows(conn: Connection, ids: Sequence[int], timestamps: Sequence[int], bits: Sequence[int]) -> int:
    """Insert the samples (columns of equal length), ignoring those whose (series, timestamp) is
    a row already; return how many were new. Records the generations they span."""
    first, last = schema.generation(min(timestamps)), schema.generation(max(timestamps))
    if last - first < _SPAN_LISTED:  # usually one or two: every generation between is recorded
        generations: Sequence[int] = range(first, last + 1)
    else:
        generations = sorted(set(map(schema.GENERATION_MS.__rfloordiv__, timestamps)))
    dialect = of(conn)
    dialect.insert_ignore_rows(conn, schema.generations.name, ("generation",), [(g,) for g in generations])
    if has_c_functions(conn):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_INSERT, (_blob(ids), _blob(timestamps), _blob(bits)))
            return int(cursor.rowcount)
        finally:
            cursor.close()
    columns = (list(map(schema.GENERATION_MS.__rfloordiv__, timestamps)), ids, timestamps, bits)
    return dialect.insert_ignore_columns(conn, _S, schema.SAMPLE_COLUMNS, columns)


def _blob(values: Sequence[int]) -> bytes:
    if (
        isinstance(values, (array, memoryview))
        and (values.typecode if isinstance(values, array) else values.format) == "q"
    ):
        return values.tobytes()
    return array("q", values).tobytes()


def read_sealed(conn: Connection) -> int:
    """Samples older than this may be in blocks (:data:`NOT_SEALED` before the first seal)."""
    query = f"SELECT value FROM {schema.meta.name} WHERE key = '{SEALED_KEY}'"
    value = conn.exec_driver_sql(query).scalar_one_or_none()
    return NOT_SEALED if value is None else int(value)


_Rows = list[tuple[int, int, int]]  # (series_id, ts, value bits)


def drop_stored_in_blocks(
    conn: Connection, rows: _Rows, sealed: int, conflict: Callable[[int, int, int, int], Exception]
) -> _Rows:
    """Rows minus those already in blocks with the same bits; ``conflict(...)`` is raised for
    other bits. Only rows older than ``sealed`` (:func:`read_sealed`) can meet a block."""
    late = [row for row in rows if row[1] < sealed]
    if not late:
        return rows
    ids = sorted({row[0] for row in late})
    start = min(row[1] for row in late)
    end = max(row[1] for row in late)
    stored: dict[tuple[int, int], int] = {}
    for series_id, (timestamps, bits) in _blocks(conn, ids, start, end).items():
        stored.update(((series_id, t), b) for t, b in zip(timestamps, bits, strict=True))
    return without_stored(rows, stored, conflict)


def without_stored(
    rows: _Rows, stored: dict[tuple[int, int], int], conflict: Callable[[int, int, int, int], Exception]
) -> _Rows:
    """``rows`` minus those whose (series, timestamp) is in ``stored`` with the same bits;
    ``conflict(series_id, timestamp, stored bits, sent bits)`` is raised for other bits."""
    if not stored:
        return rows
    kept: _Rows = []
    for row in rows:
        existing = stored.get((row[0], row[1]))
        if existing is None:
            kept.append(row)
        elif existing != row[2]:
            raise conflict(row[0], row[1], existing, row[2])
    return kept


# -- sealing, and what compaction and retention take ---------------------------------------


def seal(
    conn: Connection, low: int, high: int, below: int, first: int | None = None, max_rows: int | None = None
) -> tuple[int, int | None]:
    """Seal the rows of series ids in ``[low, high)`` of the generations from ``first`` (all when
    None) to before ``below`` into blocks, oldest first.

    Returns how many rows were sealed and, when it stopped after ``max_rows``
    rows with generations left, the next generation to seal (else None).
    Nothing without the C functions (:func:`has_c_functions`).
    """
    if not has_c_functions(conn):
        return 0, None
    if read_sealed(conn) < below * schema.GENERATION_MS:
        conn.exec_driver_sql(
            f"INSERT INTO {schema.meta.name} (key, value) VALUES ('{SEALED_KEY}', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(below * schema.GENERATION_MS),),
        )
    start = -(2**63) if first is None else first * schema.GENERATION_MS
    sealed = 0
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for generation in schema.generations_in(conn, start, below * schema.GENERATION_MS - 1):
            if max_rows is not None and sealed >= max_rows:
                return sealed, generation
            cursor.execute(_SEAL, (block_key(generation), generation, low, high))
            if cursor.rowcount:
                cursor.execute(
                    f"DELETE FROM {_S} WHERE generation = ? AND series_id >= ? AND series_id < ?",
                    (generation, low, high),
                )
                sealed += cursor.rowcount
    finally:
        cursor.close()
    return sealed, None


def blocks_before(conn: Connection, low: int, high: int, cutoff: int) -> dict[int, _Columns]:
    """Series id -> (timestamps, value bits) older than ``cutoff`` in the blocks of series ids in
    ``[low, high)``, in time order."""
    mark = of(conn).placeholder
    rows = schema.driver_rows(
        conn,
        f"SELECT series_id, data FROM {_B} WHERE series_id >= {mark} AND series_id < {mark} "
        f"AND generation <= {mark} ORDER BY series_id, generation",
        [low, high, schema.generation(cutoff - 1)],
    )
    return _merged_blocks(rows, -(2**63), cutoff - 1)


def trim_blocks(conn: Connection, low: int, high: int, cutoff: int) -> int:
    """Delete the samples older than ``cutoff`` from the blocks of series ids in ``[low, high)``;
    return how many were deleted."""
    mark = of(conn).placeholder
    last = schema.generation(cutoff - 1)
    rows = schema.driver_rows(
        conn,
        f"SELECT generation, series_id, data FROM {_B} WHERE series_id >= {mark} "
        f"AND series_id < {mark} AND generation <= {mark}",
        [low, high, last],
    )
    deleted = 0
    keep: list[tuple[bytes, int, int]] = []
    for generation, series_id, data in rows:
        timestamps, bits = unpack(bytes(data))
        first = bisect_left(timestamps, cutoff)
        deleted += first
        if first < len(timestamps):  # the generation the cutoff falls in: keep the rest
            keep.append((pack(timestamps[first:], bits[first:]), generation, series_id))
    conn.exec_driver_sql(
        f"DELETE FROM {_B} WHERE series_id >= {mark} AND series_id < {mark} AND generation <= {mark}",
        (low, high, last),
    )
    if keep:
        of(conn).insert_ignore_rows(conn, _B, ("data", "generation", "series_id"), keep)
    return deleted


# -- reads ---------------------------------------------------------------------------------


def head_rows(
    conn: Connection, ids: Sequence[int], start: int, end: int, generations: Sequence[int]
) -> dict[int, _Columns]:
    """Series id -> (timestamps, value bits) of the head samples of ``ids`` in ``[start, end]``
    (blocks and rows), in time order, read from ``generations`` (those that may hold them). At
    most :data:`~.sql_schema.MAX_IN` ids."""
    if not ids or not generations:
        return {}
    if has_c_functions(conn):
        merged = _merged_rows(conn, "{head}", ids, start, end, generations)
        return {series_id: unpack(data) for series_id, data in merged}
    dialect = of(conn)
    mark = dialect.placeholder
    in_ids = f"series_id IN ({dialect.marks(len(ids))})"
    # A series' blocks lie side by side: one seek per series, in the order of the ids.
    blocks = schema.driver_rows(
        conn,
        f"SELECT series_id, data FROM {_B} WHERE {in_ids} AND generation BETWEEN {mark} AND {mark} "
        "ORDER BY series_id, generation",
        [*ids, _first_block(start), schema.generation(end)],
    )
    rows = schema.driver_rows(
        conn,
        f"SELECT series_id, ts, value FROM {_S} WHERE generation IN ({dialect.marks(len(generations))}) "
        f"AND {in_ids} AND ts BETWEEN {mark} AND {mark} ORDER BY series_id, ts",
        [*generations, *ids, start, end],
    )
    found = _columns_by_series(rows, ids)
    if blocks:
        for series_id, (timestamps, bits) in _merged_blocks(blocks, start, end).items():
            found[series_id] = merge([(timestamps, bits), found.get(series_id, (array("q"), array("q")))])
    return found


def head_chunks(
    conn: Connection,
    ids: Sequence[int],
    start: int,
    end: int,
    generations: Sequence[int],
    max_samples: int = SAMPLES_PER_CHUNK,
) -> dict[int, list[EncodedChunk]]:
    """Series id -> the head samples of :func:`head_rows` as XOR chunks of at most
    ``max_samples`` samples each (cut as :func:`~remote_storage.chunks.split_into_chunks` cuts),
    what a streamed read answers. With the C functions the chunks are encoded inside SQLite
    (``rs_chunks``), with the same bytes."""
    if not 1 <= max_samples <= MAX_CHUNK_SAMPLES:
        raise ValueError(f"max_samples must be between 1 and {MAX_CHUNK_SAMPLES}, got {max_samples}")
    if not ids or not generations:
        return {}
    if not has_c_functions(conn):
        return {
            series_id: split_into_chunks(timestamps, schema.bits_to_floats(bits), max_samples)
            for series_id, (timestamps, bits) in head_rows(conn, ids, start, end, generations).items()
        }
    merged = f"rs_chunks({{head}}, {int(max_samples)})"
    return {
        series_id: _split_chunks(data)
        for series_id, data in _merged_rows(conn, merged, ids, start, end, generations)
    }


#: Before each chunk of ``rs_chunks``: its first and last timestamps, and its size.
_CHUNK_HEADER = struct.Struct(">qqI")


def _split_chunks(data: bytes) -> list[EncodedChunk]:
    """The chunks of an ``rs_chunks`` blob."""
    header = _CHUNK_HEADER.size
    first, last, size = _CHUNK_HEADER.unpack_from(data)
    if header + size == len(data):  # one chunk: the usual case
        return [EncodedChunk(first, last, data[header:])]
    chunks = []
    at = 0
    while at < len(data):
        first, last, size = _CHUNK_HEADER.unpack_from(data, at)
        at += header + size
        chunks.append(EncodedChunk(first, last, data[at - size : at]))
    return chunks


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _merged_rows(
    conn: Connection,
    merged: str,
    ids: Sequence[int],
    start: int,
    end: int,
    generations: Sequence[int],
) -> list[tuple[Any, ...]]:
    """(series id, ``merged``) of each of ``ids`` that has head samples in the range, where
    ``merged`` is a scalar function of ``head``: the packed blob of the series' samples, its
    blocks' (trimmed to the range by ``rs_merge``) and its rows' merged by ``rs_union``, a
    block's sample kept on equal timestamps (SQLite with the C functions).

    Per id, one seek into the blocks and one per generation that holds rows at all (found
    first: usually the newest one or two, as the rest is sealed), each subquery reading one
    series' pieces in index order: nothing is sorted. The results come back as one row
    (:func:`collected`). Everything is read in the snapshot of the connection's transaction."""
    with_rows = schema.driver_rows(
        conn,
        f"SELECT generation FROM {schema.generations.name} g WHERE generation IN "
        f"({_marks(len(generations))}) AND EXISTS (SELECT 1 FROM {_S} s WHERE s.generation = g.generation)",
        list(generations),
    )
    if not schema.driver_rows(conn, f"SELECT 1 FROM {_B} LIMIT 1", []):  # none sealed (or all compacted)
        if not with_rows:
            return []
        sql = (
            f"SELECT rs_collect(id, merged) FROM (SELECT series_id AS id, "
            f"{merged.format(head='rs_pack(ts, value)')} AS merged FROM {_S} "
            f"WHERE generation IN ({_marks(len(with_rows))}) AND series_id IN ({_marks(len(ids))}) "
            "AND ts BETWEEN ? AND ? GROUP BY series_id)"
        )
        return collected(schema.driver_rows(conn, sql, [*(g for (g,) in with_rows), *ids, start, end]))
    blocks = f"SELECT rs_merge(data, ?, ?) FROM {_B} WHERE series_id = id AND generation BETWEEN ? AND ?"
    parameters = [*ids, start, end, _first_block(start), schema.generation(end)]
    if with_rows:
        rows = (
            f"SELECT rs_pack(ts, value) FROM {_S} WHERE generation IN ({_marks(len(with_rows))}) "
            "AND series_id = id AND ts BETWEEN ? AND ?"
        )
        head = f"rs_union(({blocks}), ({rows}))"
        parameters += [*(g for (g,) in with_rows), start, end]
    else:
        head = f"({blocks})"
    values = ", ".join(["(?)"] * len(ids))
    sql = f"WITH ids(id) AS (VALUES {values}) SELECT rs_collect(id, {merged.format(head=head)}) FROM ids"
    return collected(schema.driver_rows(conn, sql, parameters))


#: Before each piece of an ``rs_collect`` blob: its id, the integers after data, and its size.
_COLLECTED = [struct.Struct(">q" + "q" * more + "I") for more in range(3)]


def collected(rows: list[tuple[bytes]], more: int = 0) -> list[tuple[Any, ...]]:
    """The pieces of the one row of ``SELECT rs_collect(id, data, ...)``, each (id, data, and
    the ``more`` integers that followed data), in the order of the rows collected.

    A read of many series returns them as one row: the driver releases the interpreter lock
    at each row it steps to, and taking it back can wait for a thread busy answering another
    read, a few milliseconds each time."""
    data = rows[0][0]
    header = _COLLECTED[more]
    found: list[tuple[Any, ...]] = []
    at = 0
    while at < len(data):
        fields = header.unpack_from(data, at)
        size = fields[-1]
        at += header.size + size
        found.append((fields[0], data[at - size : at], *fields[1:-1]))
    return found


def _blocks(conn: Connection, ids: Sequence[int], start: int, end: int) -> dict[int, _Columns]:
    """The block samples of ``ids`` in ``[start, end]`` (any number of ids)."""
    dialect = of(conn)
    mark = dialect.placeholder
    found: dict[int, _Columns] = {}
    for first in range(0, len(ids), schema.MAX_IN):
        part = list(ids[first : first + schema.MAX_IN])
        rows = schema.driver_rows(
            conn,
            f"SELECT series_id, data FROM {_B} WHERE series_id IN ({dialect.marks(len(part))}) "
            f"AND generation BETWEEN {mark} AND {mark} ORDER BY series_id, generation",
            [*part, _first_block(start), schema.generation(end)],
        )
        found.update(_merged_blocks(rows, start, end))
    return found


def _merged_blocks(rows: Iterable[tuple[int, Any]], start: int, end: int) -> dict[int, _Columns]:
    """(series_id, data) rows, by series -> each series' samples in ``[start, end]``, in time order."""
    pieces: dict[int, list[_Columns]] = {}
    for series_id, data in rows:
        pieces.setdefault(series_id, []).append(unpack(bytes(data)))
    found: dict[int, _Columns] = {}
    for series_id, parts in pieces.items():
        timestamps, bits = merge(parts)
        first, last = bisect_left(timestamps, start), bisect_right(timestamps, end)
        if first < last:
            found[series_id] = (timestamps[first:last], bits[first:last])
    return found


def merge(parts: list[_Columns]) -> _Columns:
    """Sorted (timestamps, bits) pieces as one, in time order, the first of equal timestamps kept."""
    timestamps, bits = array("q"), array("q")
    ordered = True
    for part_ts, part_bits in parts:
        if not part_ts:
            continue
        if timestamps and part_ts[0] <= timestamps[-1]:
            ordered = False
        timestamps.extend(part_ts)
        bits.extend(part_bits)
    if ordered:
        return timestamps, bits
    merged: dict[int, int] = {}
    for t, b in zip(timestamps, bits, strict=True):
        merged.setdefault(t, b)
    order = sorted(merged)
    return array("q", order), array("q", map(merged.__getitem__, order))


def _columns_by_series(rows: Sequence[tuple[int, int, int]], ids: Sequence[int]) -> dict[int, _Columns]:
    """(series_id, ts, bits) rows sorted by series and time -> series id: (timestamps, bits).

    The rows are cut into columns once and each series' run is found by
    bisection, so the work per row is done in C.
    """
    found: dict[int, _Columns] = {}
    if not rows:
        return found
    series_ids = list(map(itemgetter(0), rows))
    timestamps = list(map(itemgetter(1), rows))
    bits = list(map(itemgetter(2), rows))
    lo = 0
    for series_id in sorted(set(ids)):
        lo = bisect_left(series_ids, series_id, lo)
        hi = bisect_right(series_ids, series_id, lo)
        if hi > lo:
            found[series_id] = (array("q", timestamps[lo:hi]), array("q", bits[lo:hi]))
        lo = hi
    return found


# -- schema --------------------------------------------------------------------------------


def migrate_head_2_to_3(conn: Connection, dialect: Dialect) -> None:
    """Schema 2 -> 3 for the head: ``rs_blocks`` appears; the rows of ``rs_samples`` stay as
    they are (the next maintenance pass seals the older ones). Runs in the opening transaction,
    with the index's migration."""
    del dialect
    schema.blocks.create(conn, checkfirst=True)
