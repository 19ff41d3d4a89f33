"""Tables of the SQL backend, their version, and the label-set encoding they store.

Layout (all names prefixed ``rs_`` so the tables can share a PostgreSQL
database with others):

* ``rs_meta``: key/value pairs; ``format`` identifies a remote-storage
  database and ``schema_version`` its layout.
* ``rs_tenants``, ``rs_pairs``, ``rs_series``, ``rs_postings``: the series
  index (schema 4, :mod:`.sql_index`): tenants numbered, label pairs interned
  per tenant; a series is its tenant's id, a 64-bit hash of its canonical
  label bytes (:func:`remote_storage.storage.join_labels`; indexed, not
  unique) and its pair ids packed in label order as varints; postings are
  each pair's series ids as varints in rows of up to 512 on SQLite
  (:mod:`.sql_postings`), a GIN index over the pair ids on PostgreSQL
  (:attr:`.Dialect.keeps_postings`). A series' ``id`` is stable.
* ``rs_samples``: one row per float sample, keyed by (generation, series id,
  timestamp), where the generation is the timestamp's minute
  (:func:`generation`); the value is the float64's 64 bits as a signed
  integer, because SQLite turns NaN into NULL and no database keeps NaN
  payloads (the stale marker) exactly.
* ``rs_blocks``: sealed head rows, one per series and 16 generations
  (keyed by the first of them): the samples of ``rs_samples`` of
  generations no longer written to, packed into one blob (:mod:`.sql_head`),
  so a read of the head costs a seek per series and a row or two instead of
  a seek per series and minute and a row per sample. Keyed by series first: sealing writes once a minute in
  bulk, so it can afford to land all over the table, and a read finds a
  series' blocks side by side. ``rs_blocks_generation`` finds the blocks of
  a generation (to forget an empty one).
* ``rs_generations``: the generations that may hold rows of ``rs_samples``
  or ``rs_blocks``, so a read seeks each (generation, series) pair instead
  of scanning.
* ``rs_chunks``: older samples, compacted from ``rs_samples`` into XOR
  chunks of up to 480 samples (Prometheus' own chunk encoding, bit-exact for
  every value, packed by :func:`~remote_storage.chunks.pack_chunk`), keyed
  by (series id, first timestamp). A series' chunks never overlap each other;
  the ``compacted_before`` entry of ``rs_meta`` says up to which timestamp
  samples may live in chunks.
* ``rs_histograms``, ``rs_exemplars``, ``rs_metadata``: native histograms,
  exemplars and metric metadata.

Three indexes hold text a sender chooses: ``rs_tenants_name`` (tenant),
``rs_pairs_tenant_name_value`` (tenant id, label name, label value) and
``rs_metadata_pkey`` (tenant, metric family). PostgreSQL's B-tree entries are
limited to :data:`POSTGRESQL_INDEX_ENTRY_LIMIT` bytes;
:func:`oversized_postgresql_entry` finds a label set that cannot be indexed
before it is sent to the database (a label set of any total size can, as long
as each of its pairs can), :func:`postgresql_tenant_entry_bytes` a tenant
name. SQLite has no such limit.

Samples are clustered by (generation, series, timestamp), histograms and
chunks by (series, timestamp) (SQLite ``WITHOUT ROWID``): a range read of one
series is one index range per generation of the row table, and one for its
chunks.
"""

from __future__ import annotations

import json
import logging
import time
from array import array
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from remote_storage.errors import CannotOpenStorage
from remote_storage.storage import Histogram, Labels, ResetHint, float_bits, join_labels, split_labels

from .sql_dialect import POSTGRESQL_INDEX_ENTRY_LIMIT, Dialect, of

__all__ = [
    "FORMAT",
    "GENERATION_MS",
    "MAX_IN",
    "PAIRS_INDEX",
    "POSTGRESQL_INDEX_ENTRY_LIMIT",
    "SAMPLE_COLUMNS",
    "SCHEMA_VERSION",
    "TENANTS_INDEX",
    "DatabaseMismatch",
    "bits_to_floats",
    "decode_histogram",
    "decode_labels",
    "driver_rows",
    "encode_histogram",
    "encode_labels",
    "floats_to_bits",
    "generation",
    "generations_in",
    "index_tables",
    "metadata",
    "open_schema",
    "oversized_postgresql_entry",
    "postgresql_index_entry_bytes",
    "postgresql_tenant_entry_bytes",
    "signed_bits",
    "statement_rows",
]

log = logging.getLogger("remote_storage.backends.sql")

FORMAT = "prometheus-remote-storage"
SCHEMA_VERSION = 4
#: Values listed in one IN (...) clause.
MAX_IN = 900

#: Width of a generation of ``rs_samples`` in milliseconds of sample time.
#:
#: Keying rows by series first would spread every request over the whole
#: table: Prometheus sends each series once per scrape, so each new row lands
#: next to that series' older rows, and every commit rewrites pages all over
#: the table (measured on SQLite with 100,000 series: 847,000 rows/s with 8
#: rows per series, 299,000 with 40, and falling). With the minute first, new
#: rows land only among the few rows per series of the current minute, and
#: the rest of the table is not touched again until compaction moves it.
GENERATION_MS = 60_000


def generation(timestamp: int) -> int:
    """The generation of ``rs_samples`` a timestamp belongs to (floor division: negatives too)."""
    return timestamp // GENERATION_MS


metadata = MetaData()

_ID = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid

meta = Table(
    "rs_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

tenants = Table(
    "rs_tenants",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    UniqueConstraint("name", name="rs_tenants_name"),
)

pairs = Table(
    "rs_pairs",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("value", Text, nullable=False),
    UniqueConstraint("tenant_id", "name", "value", name="rs_pairs_tenant_name_value"),
)

series = Table(
    "rs_series",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, nullable=False),
    Column("hash", BigInteger, nullable=False),
    Column("pairs", LargeBinary, nullable=False),
    Index("rs_series_hash", "hash"),
)

#: Series ids of a pair in rows of up to :data:`~.sql_postings.POSTING_IDS` ids: ``first_id``,
#: then the others as delta varints in ``ids`` (:mod:`.sql_postings`).
postings = Table(
    "rs_postings",
    metadata,
    Column("pair_id", BigInteger, primary_key=True, autoincrement=False),
    Column("first_id", BigInteger, primary_key=True, autoincrement=False),
    Column("ids", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)


def index_tables(dialect: Dialect) -> list[Table]:
    """The tables of the series index on this database (``rs_postings`` where it keeps one)."""
    return [tenants, pairs, series, postings] if dialect.keeps_postings else [tenants, pairs, series]


SAMPLE_COLUMNS = ("generation", "series_id", "ts", "value")
samples = Table(
    "rs_samples",
    metadata,
    Column("generation", BigInteger, primary_key=True),
    Column("series_id", BigInteger, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

#: Sealed head rows: the samples of one series in up to 16 generations, packed in one blob
#: (:mod:`.sql_head` says how and when).
blocks = Table(
    "rs_blocks",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("generation", BigInteger, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Index("rs_blocks_generation", "generation"),
    sqlite_with_rowid=False,
)

generations = Table(
    "rs_generations",
    metadata,
    Column("generation", BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

chunks = Table(
    "rs_chunks",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("min_ts", BigInteger, primary_key=True),
    Column("max_ts", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

histograms = Table(
    "rs_histograms",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

exemplars = Table(
    "rs_exemplars",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("labels", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

metric_metadata = Table(
    "rs_metadata",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("family", Text, primary_key=True),
    Column("type", SmallInteger, nullable=False),
    Column("help", Text, nullable=False),
    Column("unit", Text, nullable=False),
)

# The canonical label-set bytes are the storage layer's joined labels (name 0xFF value ...).
encode_labels = join_labels
decode_labels = split_labels


#: The index whose entries hold a label pair's text.
PAIRS_INDEX = "rs_pairs_tenant_name_value"
#: The index whose entries hold a tenant's name.
TENANTS_INDEX = "rs_tenants_name"
#: Longest text a B-tree entry stores with a 1-byte header (and no alignment); longer ones take a
#: 4-byte header aligned to 4 bytes.
_SHORT_TEXT = 126
#: Most bytes of an entry besides its text: the entry header (8), alignment before each of four
#: 4-byte text headers (3 + 4 each) and before a bigint (7 + 8), final alignment (7).
_MOST_ENTRY_OVERHEAD = 8 + 4 * 7 + 15 + 7


def _aligned(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def postgresql_index_entry_bytes(*texts: int, bigint: bool = False, integer_first: bool = False) -> int:
    """Bytes a PostgreSQL B-tree index entry takes for text or bytea columns of these lengths
    (in bytes), in this order, after an integer column when ``integer_first`` is set and
    followed by a bigint column when ``bigint`` is set.

    The entry is a header of 8 bytes, then the columns, each aligned as its
    type asks, rounded up to 8 bytes. Values PostgreSQL compresses in line
    (long, repetitive ones) take less; this is the size when they do not
    compress, so a label set that passes always fits.
    """
    offset = 8  # IndexTupleData: heap TID (6) and size/flags (2); no null bitmap, no column is null
    if integer_first:
        offset += 4
    for length in texts:
        if length <= _SHORT_TEXT:
            offset += 1 + length
        else:
            offset = _aligned(offset, 4) + 4 + length
    if bigint:
        offset = _aligned(offset, 8) + 8
    return _aligned(offset, 8)


def oversized_postgresql_entry(tenant: str, labels: Labels) -> tuple[str, int] | None:
    """The first PostgreSQL index entry of the label pairs of ``labels`` (:data:`PAIRS_INDEX`:
    the tenant's id, the name, the value) larger than :data:`POSTGRESQL_INDEX_ENTRY_LIMIT`, as
    (index name, bytes); None when every entry fits. (The tenant's own entry is
    :func:`postgresql_tenant_entry_bytes`.)

    Linear in the size of the label set, and usually decided from the
    lengths in characters alone.
    """
    for name, value in labels:
        if 4 * (len(name) + len(value)) + _MOST_ENTRY_OVERHEAD <= POSTGRESQL_INDEX_ENTRY_LIMIT:
            continue  # decided from the length in characters (a character is at most 4 bytes of UTF-8)
        size = postgresql_index_entry_bytes(len(name.encode()), len(value.encode()), integer_first=True)
        if size > POSTGRESQL_INDEX_ENTRY_LIMIT:
            return PAIRS_INDEX, size
    return None


def postgresql_tenant_entry_bytes(tenant: str) -> int:
    """Bytes the entry of ``tenant`` takes in PostgreSQL's :data:`TENANTS_INDEX`."""
    return postgresql_index_entry_bytes(len(tenant.encode()))


def bits_to_floats(bits: Sequence[int]) -> array[float]:
    values = array("d")
    # an int64 array is read as it is (no copies); anything else is packed first
    packed = bits if isinstance(bits, array) and bits.typecode == "q" else array("q", bits)
    values.frombytes(memoryview(packed).cast("B"))
    return values


def floats_to_bits(values: Sequence[float]) -> array[int]:
    bits = array("q")
    bits.frombytes(array("d", values).tobytes())
    return bits


def signed_bits(value: float) -> int:
    return floats_to_bits([value])[0]


def encode_histogram(h: Histogram) -> bytes:
    """Histogram fields as JSON, floats as their 64 bits (no value is rounded or quieted)."""

    def num(value: int | float) -> int | list[int]:
        return [float_bits(value)] if isinstance(value, float) else value

    return json.dumps(
        [
            num(h.count),
            float_bits(h.sum),
            h.schema,
            float_bits(h.zero_threshold),
            num(h.zero_count),
            h.is_float,
            h.negative_spans,
            [num(b) for b in h.negative_buckets],
            h.positive_spans,
            [num(b) for b in h.positive_buckets],
            int(h.reset_hint),
            [float_bits(v) for v in h.custom_values],
        ],
        separators=(",", ":"),
    ).encode()


def decode_histogram(timestamp: int, data: bytes) -> Histogram:
    def num(value: int | list[int]) -> int | float:
        return bits_to_floats(value)[0] if isinstance(value, list) else value

    (count, sum_, sch, zt, zc, is_float, nspans, nbuckets, pspans, pbuckets, hint, custom) = json.loads(data)
    return Histogram(
        timestamp=timestamp,
        count=num(count),
        sum=bits_to_floats([sum_])[0],
        schema=sch,
        zero_threshold=bits_to_floats([zt])[0],
        zero_count=num(zc),
        is_float=is_float,
        negative_spans=tuple((o, n) for o, n in nspans),
        negative_buckets=tuple(num(b) for b in nbuckets),
        positive_spans=tuple((o, n) for o, n in pspans),
        positive_buckets=tuple(num(b) for b in pbuckets),
        reset_hint=ResetHint(hint),
        custom_values=tuple(bits_to_floats(custom)),
    )


def driver_rows(conn: Connection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` (parameters marked as the dialect marks them: :meth:`.Dialect.marks`) as the
    driver's own cursor returns them.

    For reads of many rows: no result processing per row, and no statement
    compiled for each length of an IN list. It runs in the connection's
    current transaction (begin one first when several reads must agree).
    """
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, parameters)
        rows: list[Any] = cursor.fetchall()
        return rows
    finally:
        cursor.close()


def statement_rows(conn: Connection, statement: Any) -> list[Any]:
    """Rows of a Core statement as the driver's own cursor returns them (see :func:`driver_rows`).

    For statements whose columns need no result processing (integers, text,
    bytes) and whose parameters need no bind processing.
    """
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    parameters: Any = compiled.params
    if compiled.positiontup is not None:  # SQLite's qmark style: parameters in order
        parameters = [parameters[name] for name in compiled.positiontup]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), parameters)
        rows: list[Any] = cursor.fetchall()
        return rows
    finally:
        cursor.close()


def generations_in(conn: Connection, start: int, end: int) -> list[int]:
    """The generations that may hold rows of ``rs_samples`` with timestamps in ``[start, end]``."""
    mark = of(conn).placeholder
    rows = driver_rows(
        conn,
        f"SELECT generation FROM {generations.name} WHERE generation BETWEEN {mark} AND {mark} "
        "ORDER BY generation",
        [generation(start), generation(end)],
    )
    return [value for (value,) in rows]


# -- opening: create, check, migrate ---------------------------------------------


class DatabaseMismatch(CannotOpenStorage):
    """The database is not one this version can open (foreign, or a newer schema)."""


def open_schema(engine: Engine, dialect: Dialect, where: str) -> None:
    """Create the tables in a new database, or check that an existing one is ours (and upgrade it).

    ``where`` names the database in messages. Processes starting together
    check it one at a time (:meth:`.Dialect.lock_schema`).
    """
    try:
        with engine.begin() as conn:
            dialect.lock_schema(conn)
            existing = set(conn.dialect.get_table_names(conn))
            if meta.name in existing:
                rows: dict[str, str] = {k: v for k, v in conn.execute(select(meta.c.key, meta.c.value))}
                if rows.get("format") != FORMAT:
                    raise DatabaseMismatch(f"{where} has an rs_meta table of another program")
                version = int(rows.get("schema_version", "0"))
                if version > SCHEMA_VERSION:
                    raise DatabaseMismatch(
                        f"{where} has schema version {version}, newer than this "
                        f"remote-storage supports ({SCHEMA_VERSION}); upgrade remote-storage"
                    )
                if version < 1:
                    raise DatabaseMismatch(f"{where} has unknown old schema version {version}")
                if version == 1:
                    _upgrade_from_1(conn, dialect, where)
                if version <= 2:
                    _upgrade_from_2(conn, dialect, where)
                if version <= 3:
                    _upgrade_from_3(conn, dialect, where)
                return
            ours = {t.name for t in metadata.sorted_tables}
            if existing & ours:
                raise DatabaseMismatch(f"{where} has remote-storage tables but no rs_meta table")
            if existing and not dialect.shares_database:
                raise DatabaseMismatch(
                    f"{where} is an SQLite database of another program "
                    f"(tables: {', '.join(sorted(existing)[:5])})"
                )
            left_out = {tenants, pairs, series, postings} - set(index_tables(dialect))
            metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t not in left_out])
            dialect.create_series_index(conn)
            conn.execute(
                meta.insert(),
                [{"key": "format", "value": FORMAT}, {"key": "schema_version", "value": str(SCHEMA_VERSION)}],
            )
    except DBAPIError as exc:
        raise CannotOpenStorage(dialect.open_failure(where, exc)) from None


def _upgrade_from_1(conn: Connection, dialect: Dialect, where: str) -> None:
    """Schema 1 -> 2: ``rs_samples`` gains the generation key, ``rs_generations`` appears.

    Runs in the opening transaction: a failure leaves the database at
    version 1, as it was.
    """
    log.warning("%s: upgrading the schema from version 1 to 2 (rs_samples is rewritten)", where)
    conn.exec_driver_sql("ALTER TABLE rs_samples RENAME TO rs_samples_v1")
    dialect.free_key_name(conn, "rs_samples", "rs_samples_v1")
    samples.create(conn)
    generations.create(conn)
    result = conn.exec_driver_sql("SELECT series_id, ts, value FROM rs_samples_v1")
    seen: set[int] = set()
    while rows := result.fetchmany(10_000):
        keyed = [(generation(ts), series_id, ts, value) for series_id, ts, value in rows]
        seen.update(row[0] for row in keyed)
        dialect.insert_ignore_rows(conn, samples.name, SAMPLE_COLUMNS, keyed)
    dialect.insert_ignore_rows(conn, generations.name, ("generation",), [(g,) for g in sorted(seen)])
    conn.exec_driver_sql("DROP TABLE rs_samples_v1")
    _set_version(conn, 2)


def _upgrade_from_2(conn: Connection, dialect: Dialect, where: str) -> None:
    """Schema 2 -> 3, each part of the schema by its own module, in the opening transaction: a
    failure leaves the database at version 2, as it was."""
    from .sql_head import migrate_head_2_to_3  # it builds on this module

    log.warning("%s: upgrading the schema from version 2 to 3", where)
    migrate_head_2_to_3(conn, dialect)
    _set_version(conn, 3)


def _upgrade_from_3(conn: Connection, dialect: Dialect, where: str) -> None:
    """Schema 3 -> 4: the series index without a second copy of the label bytes
    (:func:`.sql_index.migrate_index_3_to_4`).

    Runs in the opening transaction: a failure leaves the database at
    version 3 (or older, when earlier steps ran in the same transaction), as it was.
    """
    from .sql_index import migrate_index_3_to_4  # it uses this module's tables

    log.warning("%s: upgrading the schema from version 3 to 4 (the series index is rewritten)", where)
    started = time.monotonic()
    migrate_index_3_to_4(conn, dialect)
    _set_version(conn, 4)
    log.warning("%s: schema version 4 in %.1f s", where, time.monotonic() - started)


def _set_version(conn: Connection, version: int) -> None:
    conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))
