"""The head of the SQL backend: the sample rows of ``rs_samples``, their inserts and reads.

A float sample is one row ``(generation, series_id, ts, value)`` keyed in
that order (:data:`~.sql_schema.GENERATION_MS` says why the minute comes
first). Every statement that inserts or reads these rows for ingestion and
queries is here; compaction reads and deletes them in :mod:`.sql_chunks`.

On SQLite, when the C functions of ``_sql_head.c`` are installed on the
connection (:func:`native`: the dialect installs them when it connects), the
per-row work runs inside SQLite, with the interpreter lock released:

* an insert binds a batch as three blobs of int64 (series ids, timestamps,
  value bits) and expands them with the table-valued ``rs_unpack``, instead
  of four bound parameters per row;
* a read returns one row per series, its samples packed by the aggregate
  ``rs_pack`` into one blob (timestamps, then value bits, in time order),
  instead of one tuple per sample; and a read of many series scans each
  generation's range of their ids once, instead of seeking each (series,
  generation) pair.

Elsewhere (PostgreSQL, or SQLite without the C functions) the same rows are
inserted as multi-row statements (:meth:`.Dialect.insert_ignore_columns`)
and read one tuple per sample; the results are the same.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from . import sql_schema as schema
from .sql_dialect import NATIVE_HEAD, Dialect, of

__all__ = ["head_rows", "insert_rows", "migrate_head_2_to_3", "native"]

#: A read scans the range of its series ids in each generation, rather than seeking each
#: (series, generation) pair, when it asks for at least this share of the ids in that range.
_SCAN_DENSITY = 0.25

_INSERT = (
    f"INSERT INTO {schema.samples.name} (generation, series_id, ts, value) "
    f"SELECT generation, series_id, ts, value FROM rs_unpack(?, ?, ?, {schema.GENERATION_MS}) "
    "WHERE true ON CONFLICT DO NOTHING"  # WHERE: the parser would read ON as a join's
)


def native(conn: Connection) -> bool:
    """Whether the C functions are installed on this connection."""
    return bool(conn.connection.info.get(NATIVE_HEAD))


def insert_rows(conn: Connection, ids: Sequence[int], timestamps: Sequence[int], bits: Sequence[int]) -> int:
    """Insert the samples (columns of equal length), ignoring those whose (series, timestamp) is
    stored already; return how many were new. Records their generations."""
    generations = sorted(set(map(schema.GENERATION_MS.__rfloordiv__, timestamps)))
    dialect = of(conn)
    dialect.insert_ignore_rows(conn, schema.generations.name, ("generation",), [(g,) for g in generations])
    if native(conn):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_INSERT, (_blob(ids), _blob(timestamps), _blob(bits)))
            return int(cursor.rowcount)
        finally:
            cursor.close()
    columns = (list(map(schema.GENERATION_MS.__rfloordiv__, timestamps)), ids, timestamps, bits)
    return dialect.insert_ignore_columns(conn, schema.samples.name, schema.SAMPLE_COLUMNS, columns)


def _blob(values: Sequence[int]) -> bytes:
    if isinstance(values, array) and values.typecode == "q":
        return values.tobytes()
    return array("q", values).tobytes()


def head_rows(
    conn: Connection, ids: Sequence[int], start: int, end: int, generations: Sequence[int]
) -> dict[int, tuple[array[int], array[int]]]:
    """Series id -> (timestamps, value bits) of the sample rows of ``ids`` in ``[start, end]``,
    in time order, read from ``generations`` (those that may hold such rows). At most
    :data:`~.sql_schema.MAX_IN` ids."""
    if not ids or not generations:
        return {}
    dialect = of(conn)
    mark = dialect.placeholder
    low, high = min(ids), max(ids)
    where = f"generation IN ({dialect.marks(len(generations))})"
    parameters: list[Any] = list(generations)
    if len(set(ids)) >= _SCAN_DENSITY * (high - low + 1):
        # Many ids close together: one range of each generation, the others filtered out.
        where += f" AND series_id BETWEEN {mark} AND {mark}"
        parameters += [low, high]
    where += f" AND series_id IN ({dialect.marks(len(ids))}) AND ts BETWEEN {mark} AND {mark}"
    parameters += [*ids, start, end]
    if native(conn):
        rows = schema.driver_rows(
            conn,
            f"SELECT series_id, rs_pack(ts, value) FROM {schema.samples.name} "
            f"WHERE {where} GROUP BY series_id",
            parameters,
        )
        found: dict[int, tuple[array[int], array[int]]] = {}
        for series_id, packed in rows:
            both = array("q")
            both.frombytes(packed)
            half = len(both) // 2
            found[series_id] = (both[:half], both[half:])
        return found
    rows = schema.driver_rows(
        conn,
        f"SELECT series_id, ts, value FROM {schema.samples.name} WHERE {where} ORDER BY series_id, ts",
        parameters,
    )
    return _columns_by_series(rows, ids)


def _columns_by_series(
    rows: Sequence[tuple[int, int, int]], ids: Sequence[int]
) -> dict[int, tuple[array[int], array[int]]]:
    """(series_id, ts, bits) rows sorted by series and time -> series id: (timestamps, bits).

    The rows are cut into columns once and each series' run is found by
    bisection, so the work per row is done in C.
    """
    found: dict[int, tuple[array[int], array[int]]] = {}
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


def migrate_head_2_to_3(conn: Connection, dialect: Dialect) -> None:
    """Schema 2 -> 3 for the sample rows: nothing to rewrite.

    Schema 3 keeps ``rs_samples`` and ``rs_generations`` as schema 2 laid
    them out: what made reads of the head slow was how they were read (one
    seek per series and generation, one tuple per sample), which changed
    without touching the rows. Runs in the opening transaction, with the
    index's migration.
    """
    del conn, dialect
