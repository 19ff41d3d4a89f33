"""Postings of the SQLite series index: the series ids of each label pair, compressed.

``rs_postings(pair_id, first_id, ids)`` (``WITHOUT ROWID``, keyed by
``(pair_id, first_id)``): a pair's series ids in increasing order, in rows
of up to :data:`POSTING_IDS` ids. A row holds its first id in ``first_id``
and the others in ``ids`` as unsigned varints of the difference to the id
before (:func:`encode_ids`): a series of ten pairs costs a few bytes of
postings instead of ten rows of about eleven bytes each.

New series always take ids larger than any stored, so their postings are
appended (:func:`append_postings`): each pair's last row is filled up to
:data:`POSTING_IDS` ids, then new rows follow.

Queries expand rows with the table-valued function ``rs_posting_ids(first_id,
ids)`` (column ``id``), in C (``_sql_index.c``, installed on each connection
when the extension is built: :func:`has_c_postings`). Its Python twin is
the scalar ``rs_posting_ids_json(first_id, ids)``, a JSON array of the same
ids, expanded by SQLite's ``json_each``; :func:`expand` picks the one the
connection has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, func, select, true

from remote_storage import native

from . import sql_schema as schema
from .sql_dialect import NATIVE_INDEX, Dialect

__all__ = [
    "POSTING_IDS",
    "append_postings",
    "decode_ids",
    "encode_ids",
    "has_c_postings",
    "install",
    "series_of_pairs",
]

#: Most series ids in one row of ``rs_postings``: a row of about a kilobyte at most, so that a
#: pair of many series is spread over rows that fill SQLite's pages well, and an append rewrites
#: at most one of them.
POSTING_IDS = 512
_MASK = (1 << 64) - 1
_SIGN = 1 << 63


def encode_ids(previous: int, ids: Iterable[int]) -> bytes:
    """``ids`` (increasing, after ``previous``) as unsigned varints of each one's difference to the
    one before it."""
    out = bytearray()
    for series_id in ids:
        delta = series_id - previous
        previous = series_id
        while delta >= 0x80:
            out.append((delta & 0x7F) | 0x80)
            delta >>= 7
        out.append(delta)
    return bytes(out)


def decode_ids(first_id: int, data: bytes) -> list[int]:
    """The ids of a postings row: ``first_id``, then the running sums of the varints in ``data``.

    Decodes as the C function does any input: bits past the 64th are
    dropped, sums wrap around in 64 bits, an unfinished varint at the end is ignored.
    """
    found = [first_id]
    current = first_id & _MASK
    value = shift = 0
    for byte in data:
        if shift < 64:
            value |= (byte & 0x7F) << shift
        if byte < 0x80:
            current = (current + (value & _MASK)) & _MASK
            found.append(current - (current & _SIGN) * 2)
            value = shift = 0
        else:
            shift += 7
    return found


def _posting_ids_json(first_id: int | None, data: bytes | None) -> str:
    """``rs_posting_ids_json``, the Python twin of ``rs_posting_ids``."""
    if first_id is None:
        return "[]"
    return json.dumps(decode_ids(first_id, data or b""))


def install(dbapi_connection: Any, c_functions: bool = True) -> bool:
    """Install the postings functions on a SQLite connection: always the Python twin, and
    ``rs_posting_ids`` in C when ``c_functions`` is set, the extension is built and it can
    reach the handle (True then)."""
    dbapi_connection.create_function("rs_posting_ids_json", 2, _posting_ids_json, deterministic=True)
    if not c_functions or native.IMPLEMENTATION != "c" or native.sql_index is None:
        return False
    return bool(native.sql_index.install(dbapi_connection))


def has_c_postings(conn: Connection) -> bool:
    """Whether ``rs_posting_ids`` (C) is installed on this connection."""
    return bool(conn.connection.info.get(NATIVE_INDEX))


def series_of_pairs(conn: Connection, pair_ids: Sequence[int] | Select[tuple[int]]) -> Select[tuple[int]]:
    """The ids of the series holding any of ``pair_ids`` (ids, or a query of ids), from the
    postings rows of those pairs expanded by the connection's function."""
    postings = schema.postings
    expanded: Any
    if has_c_postings(conn):
        expanded = func.rs_posting_ids(postings.c.first_id, postings.c.ids).table_valued("id")
        column = expanded.c.id
    else:
        listed = func.rs_posting_ids_json(postings.c.first_id, postings.c.ids)
        expanded = func.json_each(listed).table_valued("value")
        column = expanded.c.value
    query: Select[tuple[int]] = (
        select(column).select_from(postings.join(expanded, true())).where(postings.c.pair_id.in_(pair_ids))
    )
    return query


def append_postings(conn: Connection, dialect: Dialect, by_pair: dict[int, list[int]]) -> None:
    """Add the ids of new series to their pairs' postings: ``by_pair`` maps a pair id to its new
    series ids, increasing and larger than every id stored."""
    table = schema.postings.name
    pair_ids = sorted(by_pair)
    last: dict[int, tuple[int, bytes]] = {}
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        most = schema.MAX_IN
        for start in range(0, len(pair_ids), most):
            part = pair_ids[start : start + most]
            # SQLite takes the bare columns of the row that holds the max(): each pair's last row.
            cursor.execute(
                f"SELECT pair_id, max(first_id), ids FROM {table} "
                f"WHERE pair_id IN ({dialect.marks(len(part))}) GROUP BY pair_id",
                part,
            )
            for pair_id, first_id, data in cursor.fetchall():
                last[pair_id] = (first_id, bytes(data))
    finally:
        cursor.close()
    pair_column: list[int] = []
    first_column: list[int] = []
    ids_column: list[bytes] = []
    for pair_id in pair_ids:
        new = by_pair[pair_id]
        stored = last.get(pair_id)
        if stored is not None:
            first_id, data = stored
            ids = decode_ids(first_id, data)
            room = POSTING_IDS - len(ids)
            if room > 0:
                pair_column.append(pair_id)
                first_column.append(first_id)
                ids_column.append(data + encode_ids(ids[-1], new[:room]))
                new = new[room:]
        for start in range(0, len(new), POSTING_IDS):
            part = new[start : start + POSTING_IDS]
            pair_column.append(pair_id)
            first_column.append(part[0])
            ids_column.append(encode_ids(part[0], part[1:]))
    dialect.upsert_columns(
        conn, table, ("pair_id", "first_id", "ids"), 2, (pair_column, first_column, ids_column)
    )
