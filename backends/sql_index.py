"""The series index of the SQL backend (schema 4): tenants numbered, label pairs interned,
series keyed by a hash.

Tables (defined in :mod:`.sql_schema` with the others):

* ``rs_tenants(id, name)``: every tenant that stored a series, numbered, so the
  rows and index entries below hold a small integer rather than its name.
* ``rs_pairs(id, tenant_id, name, value)``: every label pair a tenant's series
  use, stored once, unique on (tenant_id, name, value).
* ``rs_series(id, tenant_id, hash, pairs)``: ``hash`` is :func:`label_hash` of the
  series' canonical label bytes (:func:`~.sql_schema.encode_labels`), indexed
  alone and not unique; ``pairs`` is the series' pair ids in label order,
  packed by :func:`pack_pairs` (zig-zag varints of the differences between
  consecutive ids: a few bytes a pair). Two label sets with one hash are two
  rows: a lookup compares the packed pair ids, which are equal exactly when
  the label sets are (pairs are interned).
* ``rs_postings(pair_id, first_id, ids)``: the inverted index on SQLite, a
  pair's series ids compressed in rows of up to 512 (:mod:`.sql_postings`).
  PostgreSQL has no clustered tables, and a row there costs about 76 bytes
  with its index entry: it keeps no postings table but a GIN index over the
  pair ids of ``rs_series.pairs`` (:meth:`.Dialect.series_of_pairs`).

No label byte is stored twice: a label set is rebuilt from its pair ids
(:class:`PairCache` keeps the pairs a process has met, as their encoded bytes).

Series creation (:func:`create_series`) takes a few statements per write,
whatever the number of new series: the tenant's id is looked up (and added
once), the pairs are looked up, the missing ones inserted and any another
writer inserted meanwhile looked up again (:meth:`.Dialect.find_pairs`,
:meth:`.Dialect.add_pairs`), then the series likewise
(:meth:`.Dialect.find_series`, :meth:`.Dialect.add_series`); on PostgreSQL
each is one set-based statement over arrays. It is race-free across
processes writing one PostgreSQL database: tenants and pairs are inserted
with ``ON CONFLICT DO NOTHING`` on their unique key, pairs in key order, and
a new series is looked up and inserted while holding a transaction lock on
its hash's bucket (:meth:`.Dialect.lock_series`), so two writers adding the
same series end with one row. SQLite has one writer.

:func:`migrate_index_3_to_4` turns the index of schema 3 (and of schema 2 before it,
which had the same index: label bytes per series, unique; postings of name and value
text) into this one, keeping every series id, so the rows that refer to series (samples,
sealed head blocks, chunks, histograms, exemplars) stay valid untouched.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter

from sqlalchemy import Connection

from remote_storage import native
from remote_storage.storage import Labels

from . import sql_schema as schema
from .sql_dialect import Dialect, of
from .sql_postings import append_postings
from .sql_schema import MAX_IN

__all__ = [
    "MAX_CACHED_PAIRS",
    "PairCache",
    "create_series",
    "label_hash",
    "migrate_index_3_to_4",
    "pack_pairs",
    "pair_ids_of_name",
    "python_unpack_pairs",
    "tenant_id",
    "unpack_pairs",
]

log = logging.getLogger("remote_storage.backends.sql")

#: Label pairs a :class:`PairCache` remembers before it starts over (about 150 bytes each).
MAX_CACHED_PAIRS = 2_000_000
_SEPARATOR = b"\xff"
_MASK = (1 << 64) - 1
_SIGN = 1 << 63


def label_hash(encoded: bytes) -> int:
    """64-bit hash of a label set's canonical bytes, as a signed integer (a BIGINT column).

    BLAKE2b with an 8-byte digest: stable across processes and versions of
    Python (unlike ``hash()``), and in the standard library.
    """
    return int.from_bytes(hashlib.blake2b(encoded, digest_size=8).digest(), "little", signed=True)


def pack_pairs(ids: Iterable[int]) -> bytes:
    """Pair ids, in label order, as zig-zag varints of the difference of each to the one before
    (the first to 0): ids interned close together take a byte or two each."""
    out = bytearray()
    previous = 0
    for pair_id in ids:
        delta = pair_id - previous
        previous = pair_id
        zigzag = delta << 1 if delta >= 0 else (-delta << 1) - 1
        while zigzag >= 0x80:
            out.append((zigzag & 0x7F) | 0x80)
            zigzag >>= 7
        out.append(zigzag)
    return bytes(out)


def python_unpack_pairs(data: bytes) -> list[int]:
    """Inverse of :func:`pack_pairs`, in Python (the twin of the C ``unpack_pairs``).

    Decodes any input as the C one does: bits past the 64th are dropped,
    sums wrap around in 64 bits, an unfinished varint at the end is ignored.
    """
    ids: list[int] = []
    previous = value = shift = 0
    for byte in data:
        if shift < 64:
            value |= (byte & 0x7F) << shift
        if byte < 0x80:
            value &= _MASK
            previous = (previous + ((value >> 1) ^ -(value & 1))) & _MASK
            ids.append(previous - (previous & _SIGN) * 2)
            value = shift = 0
        else:
            shift += 7
    return ids


#: Inverse of :func:`pack_pairs`: in C (``_sql_index.c``) when it is built and the C code runs.
unpack_pairs: Callable[[bytes], list[int]] = (
    native.sql_index.unpack_pairs
    if native.sql_index is not None and native.IMPLEMENTATION == "c"
    else python_unpack_pairs
)


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
        f"SELECT id, value FROM {schema.pairs.name} WHERE tenant_id = "
        f"(SELECT id FROM {schema.tenants.name} WHERE name = {mark}) AND name = {mark}",
        [tenant, name],
    )
    return [(pair_id, value) for pair_id, value in rows]


# -- writes ------------------------------------------------------------------


def tenant_id(conn: Connection, dialect: Dialect, tenant: str) -> int:
    """The id of ``tenant`` in ``rs_tenants``, added when it has none yet (``ON CONFLICT DO
    NOTHING``: two writers adding one tenant end with one row, the second finding it)."""
    table = schema.tenants.name
    mark = dialect.placeholder
    query = f"SELECT id FROM {table} WHERE name = {mark}"
    found = schema.driver_rows(conn, query, [tenant])
    if not found:
        dialect.insert_ignore_rows(conn, table, ("name",), [(tenant,)])
        found = schema.driver_rows(conn, query, [tenant])
    return int(found[0][0])


def _pair_ids(
    conn: Connection, dialect: Dialect, tenant: int, wanted: Iterable[tuple[str, str]]
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
    owner = tenant_id(conn, dialect, tenant)
    pair_ids = _pair_ids(conn, dialect, owner, distinct)
    # Each distinct pair encoded once; a label set's bytes are then joined from them.
    encoded = {pair: pair[0].encode() + _SEPARATOR + pair[1].encode() for pair in pair_ids}
    id_of, bytes_of, join = pair_ids.__getitem__, encoded.__getitem__, _SEPARATOR.join
    keyed: dict[tuple[int, bytes], Labels] = {}
    for labels in label_sets:
        keyed[label_hash(join(map(bytes_of, labels))), pack_pairs(map(id_of, labels))] = labels
    hashes = sorted({hashed for hashed, _ in keyed})
    dialect.lock_series(conn, hashes)
    stored = dialect.find_series(conn, schema.series.name, owner, hashes)
    new = [key for key in keyed if key not in stored]
    if new:
        created = dialect.add_series(conn, schema.series.name, owner, new)
        if dialect.keeps_postings:
            _add_postings(conn, dialect, created)
        stored.update(created)
    return {labels: stored[key] for key, labels in keyed.items()}


def _add_postings(conn: Connection, dialect: Dialect, created: dict[tuple[int, bytes], int]) -> None:
    """The postings of new series (:func:`.sql_postings.append_postings`). Grouped by pair with
    the series taken in id order, so that each pair's list is in order."""
    by_pair: dict[int, list[int]] = {}
    for (_, packed), series_id in sorted(created.items(), key=itemgetter(1)):
        for pair_id in unpack_pairs(packed):
            listed = by_pair.get(pair_id)
            if listed is None:
                by_pair[pair_id] = [series_id]
            else:
                listed.append(series_id)
    append_postings(conn, dialect, by_pair)


# -- migration -----------------------------------------------------------------

#: Series of schema 3 converted per batch of the migration.
_MIGRATION_BATCH = 10_000


def migrate_index_3_to_4(conn: Connection, dialect: Dialect) -> None:
    """Schema 3 -> 4 for the series index, in the caller's (opening) transaction.

    Series keep their ids, so the sample, sealed block, chunk, histogram
    and exemplar rows that refer to them are not touched. Tenants are
    numbered in name order, pairs in the order of the old postings' key; the
    new postings are built from the series, in id order.
    """
    for table in ("rs_series", "rs_postings"):
        conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_v2")
        dialect.free_key_name(conn, table, f"{table}_v2")
    for created in schema.index_tables(dialect):
        created.create(conn)
    conn.exec_driver_sql(
        "INSERT INTO rs_tenants (name) SELECT tenant FROM "
        "(SELECT tenant FROM rs_series_v2 UNION SELECT tenant FROM rs_postings_v2) AS t ORDER BY tenant"
    )
    tenants = {name: number for number, name in conn.exec_driver_sql("SELECT id, name FROM rs_tenants")}
    conn.exec_driver_sql(
        "INSERT INTO rs_pairs (tenant_id, name, value) SELECT t.id, o.name, o.value FROM "
        "(SELECT DISTINCT tenant, name, value FROM rs_postings_v2) AS o "
        "JOIN rs_tenants t ON t.name = o.tenant ORDER BY t.name, o.name, o.value"
    )
    known: dict[tuple[int, bytes], int] = {}
    pair_rows = conn.exec_driver_sql("SELECT id, tenant_id, name, value FROM rs_pairs")
    for pair_id, owner, name, value in pair_rows:
        known[owner, name.encode() + _SEPARATOR + value.encode()] = pair_id
    result = conn.exec_driver_sql("SELECT id, tenant, labels FROM rs_series_v2 ORDER BY id")
    count = 0
    while rows := result.fetchmany(_MIGRATION_BATCH):
        converted: list[tuple[int, int, int, bytes]] = []
        by_pair: dict[int, list[int]] = {}
        for series_id, tenant, blob in rows:
            blob = bytes(blob)
            owner = tenants[tenant]
            parts = blob.split(_SEPARATOR) if blob else []
            ids = [
                known.get((owner, parts[i] + _SEPARATOR + parts[i + 1]))
                or _add_pair(conn, dialect, known, owner, parts[i], parts[i + 1])
                for i in range(0, len(parts), 2)
            ]
            for pair_id in ids:
                by_pair.setdefault(pair_id, []).append(series_id)
            converted.append((series_id, owner, label_hash(blob), pack_pairs(ids)))
        dialect.insert_ignore_rows(conn, schema.series.name, ("id", "tenant_id", "hash", "pairs"), converted)
        if dialect.keeps_postings:
            append_postings(conn, dialect, by_pair)
        count += len(converted)
    dialect.restart_ids(conn, schema.series.name)
    dialect.create_series_index(conn)
    conn.exec_driver_sql("DROP TABLE rs_postings_v2")
    conn.exec_driver_sql("DROP TABLE rs_series_v2")
    log.warning("series index upgraded to schema 4: %d series", count)


def _add_pair(
    conn: Connection,
    dialect: Dialect,
    known: dict[tuple[int, bytes], int],
    owner: int,
    name: bytes,
    value: bytes,
) -> int:
    """A pair of a schema-3 series that had no posting (never written so, but the label bytes
    are the truth): stored now (its postings come with the series')."""
    pair = (name.decode(), value.decode())
    pair_id = _pair_ids(conn, dialect, owner, [pair])[pair]
    known[owner, name + _SEPARATOR + value] = pair_id
    return pair_id
