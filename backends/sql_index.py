"""The series index of the SQL backend (schema 4): label pairs interned, series keyed by a hash.

Tables (defined in :mod:`.sql_schema` with the others):

* ``rs_pairs(id, tenant, name, value)``: every label pair a tenant's series
  use, stored once, unique on (tenant, name, value).
* ``rs_series(id, tenant, hash, pairs)``: ``hash`` is :func:`label_hash` of the
  series' canonical label bytes (:func:`~.sql_schema.encode_labels`), indexed
  with the tenant but not unique; ``pairs`` is the series' pair ids in label
  order, packed by :func:`pack_pairs`. Two label sets with one hash are two
  rows: a lookup compares the packed pair ids, which are equal exactly when
  the label sets are (pairs are interned).
* ``rs_postings(pair_id, series_id)``: the inverted index, clustered by pair
  (SQLite). PostgreSQL has no clustered tables, and a row there costs about
  76 bytes with its index entry: it keeps no postings table but a GIN index
  over the pair ids of ``rs_series.pairs`` (:meth:`.Dialect.series_of_pairs`).

No label byte is stored twice: a label set is rebuilt from its pair ids
(:class:`PairCache` keeps the pairs a process has met, as their encoded bytes).

Series creation (:func:`create_series`) takes a few statements per write,
whatever the number of new series: the pairs are looked up, the missing ones
inserted and any another writer inserted meanwhile looked up again
(:meth:`.Dialect.find_pairs`, :meth:`.Dialect.add_pairs`), then the series
likewise (:meth:`.Dialect.find_series`, :meth:`.Dialect.add_series`); on
PostgreSQL each is one set-based statement over arrays. It is race-free
across processes writing one PostgreSQL database: pairs are inserted with
``ON CONFLICT DO NOTHING`` on their unique key, in key order, and a new
series is looked up and inserted while holding a transaction lock on its
hash's bucket (:meth:`.Dialect.lock_series`), so two writers adding the same
series end with one row. SQLite has one writer.

:func:`migrate_index_3_to_4` turns the index of schema 3 (and of schema 2 before it,
which had the same index: label bytes per series, unique; postings of name and value
text) into this one, keeping every series id, so the rows that refer to series (samples,
sealed head blocks, chunks, histograms, exemplars) stay valid untouched.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from array import array
from collections.abc import Iterable, Sequence
from operator import itemgetter

from sqlalchemy import Connection

from remote_storage.storage import Labels

from . import sql_schema as schema
from .sql_dialect import Dialect, of
from .sql_schema import MAX_IN

__all__ = [
    "MAX_CACHED_PAIRS",
    "PairCache",
    "create_series",
    "label_hash",
    "migrate_index_3_to_4",
    "pack_pairs",
    "pair_ids_of_name",
    "unpack_pairs",
]

log = logging.getLogger("remote_storage.backends.sql")

#: Label pairs a :class:`PairCache` remembers before it starts over (about 150 bytes each).
MAX_CACHED_PAIRS = 2_000_000
_SEPARATOR = b"\xff"
_BIG_ENDIAN = sys.byteorder == "big"


def label_hash(encoded: bytes) -> int:
    """64-bit hash of a label set's canonical bytes, as a signed integer (a BIGINT column).

    BLAKE2b with an 8-byte digest: stable across processes and versions of
    Python (unlike ``hash()``), and in the standard library.
    """
    return int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "little", signed=True)


def pack_pairs(ids: Iterable[int]) -> bytes:
    """Pair ids as unsigned 32-bit little-endian integers (4 bytes each)."""
    packed = array("I", ids)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def unpack_pairs(data: bytes) -> array[int]:
    """Inverse of :func:`pack_pairs`."""
    ids = array("I")
    ids.frombytes(data)
    if _BIG_ENDIAN:
        ids.byteswap()
    return ids


class PairCache:
    """Pair id -> the pair's canonical bytes (``name 0xFF value``), for rebuilding label sets.

    A stored pair never changes, so what is cached stays true; pairs not met
    yet are read in slices. Shared by the reader threads of one database (a
    dict's single operations are atomic); it starts over past
    :data:`MAX_CACHED_PAIRS`.
    """

    def __init__(self, most: int = MAX_CACHED_PAIRS) -> None:
        self.most = most
        self._pairs: dict[int, bytes] = {}

    def labels(self, conn: Connection, rows: Sequence[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """``(series id, packed pair ids)`` rows -> ``(series id, encoded label set)`` rows."""
        unpacked = [(series_id, unpack_pairs(bytes(packed))) for series_id, packed in rows]
        known = self._pairs
        missing = set().union(*(ids for _, ids in unpacked)).difference(known)
        if missing:
            if len(known) + len(missing) > self.most:
                known = self._pairs = {}
                missing = set().union(*(ids for _, ids in unpacked))
            self._load(conn, sorted(missing), known)
        join = _SEPARATOR.join
        return [(series_id, join(map(known.__getitem__, ids))) for series_id, ids in unpacked]

    @staticmethod
    def _load(conn: Connection, ids: list[int], into: dict[int, bytes]) -> None:
        dialect = of(conn)
        for start in range(0, len(ids), MAX_IN):
            part = ids[start : start + MAX_IN]
            rows = schema.driver_rows(
                conn,
                f"SELECT id, name, value FROM {schema.pairs.name} WHERE id IN ({dialect.marks(len(part))})",
                part,
            )
            for pair_id, name, value in rows:
                into[pair_id] = name.encode() + _SEPARATOR + value.encode()


def pair_ids_of_name(conn: Connection, tenant: str, name: str) -> list[tuple[int, str]]:
    """(pair id, value) of every value the tenant's series hold for label ``name``."""
    mark = of(conn).placeholder
    rows = schema.driver_rows(
        conn,
        f"SELECT id, value FROM {schema.pairs.name} WHERE tenant = {mark} AND name = {mark}",
        [tenant, name],
    )
    return [(pair_id, value) for pair_id, value in rows]


# -- writes ------------------------------------------------------------------


def _pair_ids(
    conn: Connection, dialect: Dialect, tenant: str, wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Ids of the tenant's pairs ``wanted``, inserting those not stored yet.

    Looked up first and only the missing inserted: an insert that finds its
    pair stored would still use up an id on PostgreSQL (ids are 32 bits
    packed)."""
    table = schema.pairs.name
    listed = sorted(set(wanted))
    found = dialect.find_pairs(conn, table, tenant, listed)
    missing = [pair for pair in listed if pair not in found]
    if missing:
        found.update(dialect.add_pairs(conn, table, tenant, missing))
        others = [pair for pair in missing if pair not in found]  # stored by another writer meanwhile
        if others:
            found.update(dialect.find_pairs(conn, table, tenant, others))
    return found


def create_series(
    conn: Connection, dialect: Dialect, tenant: str, wanted: Iterable[Labels]
) -> dict[Labels, int]:
    """Ids of the tenant's series ``wanted`` (distinct label sets), creating those not stored yet
    with their pairs and postings. Runs in the caller's transaction."""
    label_sets = list(wanted)
    distinct: set[tuple[str, str]] = set()
    for labels in label_sets:
        distinct.update(labels)
    pair_ids = _pair_ids(conn, dialect, tenant, distinct)
    # Each distinct pair encoded once; a label set's bytes are then joined from them.
    encoded = {pair: pair[0].encode() + _SEPARATOR + pair[1].encode() for pair in pair_ids}
    id_of, bytes_of, join = pair_ids.__getitem__, encoded.__getitem__, _SEPARATOR.join
    keyed: dict[tuple[int, bytes], Labels] = {}
    for labels in label_sets:
        keyed[label_hash(join(map(bytes_of, labels))), pack_pairs(map(id_of, labels))] = labels
    hashes = sorted({hashed for hashed, _ in keyed})
    dialect.lock_series(conn, hashes)
    stored = dialect.find_series(conn, schema.series.name, tenant, hashes)
    new = [key for key in keyed if key not in stored]
    if new:
        created = dialect.add_series(conn, schema.series.name, tenant, new)
        if dialect.keeps_postings:
            _add_postings(conn, dialect, created)
        stored.update(created)
    return {labels: stored[key] for key, labels in keyed.items()}


def _add_postings(conn: Connection, dialect: Dialect, created: dict[tuple[int, bytes], int]) -> None:
    """The postings of new series, inserted in key order (pair, then series): each B-tree page is
    visited once, not once per series. Grouped by pair rather than sorted as rows: series taken
    in id order give each pair's list in order."""
    by_pair: dict[int, list[int]] = {}
    for (_, packed), series_id in sorted(created.items(), key=itemgetter(1)):
        for pair_id in unpack_pairs(packed):
            listed = by_pair.get(pair_id)
            if listed is None:
                by_pair[pair_id] = [series_id]
            else:
                listed.append(series_id)
    pair_column: list[int] = []
    series_column: list[int] = []
    for pair_id in sorted(by_pair):
        listed = by_pair[pair_id]
        pair_column.extend([pair_id] * len(listed))
        series_column.extend(listed)
    dialect.insert_ignore_columns(
        conn, schema.postings.name, ("pair_id", "series_id"), (pair_column, series_column)
    )


# -- migration -----------------------------------------------------------------

#: Series of schema 3 converted per batch of the migration.
_MIGRATION_BATCH = 10_000


def migrate_index_3_to_4(conn: Connection, dialect: Dialect) -> None:
    """Schema 3 -> 4 for the series index, in the caller's (opening) transaction.

    Series keep their ids, so the sample, sealed block, chunk, histogram
    and exemplar rows that refer to them are not touched. Pairs are numbered in the
    order of the old postings' key, and the new postings are copied from
    the old ones in that order.
    """
    for table in ("rs_series", "rs_postings"):
        conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_v2")
        dialect.free_key_name(conn, table, f"{table}_v2")
    for created in schema.index_tables(dialect):
        created.create(conn)
    conn.exec_driver_sql(
        "INSERT INTO rs_pairs (tenant, name, value) SELECT DISTINCT tenant, name, value "
        "FROM rs_postings_v2 ORDER BY tenant, name, value"
    )
    known: dict[tuple[str, bytes], int] = {}
    for pair_id, tenant, name, value in conn.exec_driver_sql("SELECT id, tenant, name, value FROM rs_pairs"):
        known[tenant, name.encode() + _SEPARATOR + value.encode()] = pair_id
    if dialect.keeps_postings:
        conn.exec_driver_sql(
            "INSERT INTO rs_postings (pair_id, series_id) SELECT p.id, o.series_id FROM rs_postings_v2 o "
            "JOIN rs_pairs p ON p.tenant = o.tenant AND p.name = o.name AND p.value = o.value"
        )
    result = conn.exec_driver_sql("SELECT id, tenant, labels FROM rs_series_v2 ORDER BY id")
    count = 0
    while rows := result.fetchmany(_MIGRATION_BATCH):
        converted: list[tuple[int, str, int, bytes]] = []
        for series_id, tenant, blob in rows:
            blob = bytes(blob)
            parts = blob.split(_SEPARATOR) if blob else []
            ids = [
                known.get((tenant, parts[i] + _SEPARATOR + parts[i + 1]))
                or _add_pair(conn, dialect, known, tenant, parts[i], parts[i + 1], series_id)
                for i in range(0, len(parts), 2)
            ]
            converted.append((series_id, tenant, label_hash(blob), pack_pairs(ids)))
        dialect.insert_ignore_rows(conn, schema.series.name, ("id", "tenant", "hash", "pairs"), converted)
        count += len(converted)
    dialect.restart_ids(conn, schema.series.name)
    dialect.create_series_index(conn)
    conn.exec_driver_sql("DROP TABLE rs_postings_v2")
    conn.exec_driver_sql("DROP TABLE rs_series_v2")
    log.warning("series index upgraded to schema 4: %d series", count)


def _add_pair(
    conn: Connection,
    dialect: Dialect,
    known: dict[tuple[str, bytes], int],
    tenant: str,
    name: bytes,
    value: bytes,
    series_id: int,
) -> int:
    """A pair of a schema-3 series that had no posting (never written so, but the label bytes
    are the truth): stored with its posting."""
    pair = (name.decode(), value.decode())
    pair_id = _pair_ids(conn, dialect, tenant, [pair])[pair]
    if dialect.keeps_postings:
        dialect.insert_ignore_rows(
            conn, schema.postings.name, ("pair_id", "series_id"), [(pair_id, series_id)]
        )
    known[tenant, name + _SEPARATOR + value] = pair_id
    return pair_id
