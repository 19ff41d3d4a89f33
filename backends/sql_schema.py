"""Tables of the SQL backend, their version, and the label-set encoding they store.

Layout (all names prefixed ``rs_`` so the tables can share a PostgreSQL
database with others):

* ``rs_meta``: key/value pairs; ``format`` identifies a remote-storage
  database and ``schema_version`` its layout.
* ``rs_series``: one row per (tenant, label set); ``labels`` is the canonical
  encoding (see :func:`encode_labels`), unique per tenant; ``id`` is stable.
* ``rs_postings``: (tenant, label name, label value, series id), the inverted
  index that equality matchers are answered from.
* ``rs_samples``: one row per float sample, keyed by (series id, timestamp);
  the value is the float64's 64 bits as a signed integer, because SQLite turns
  NaN into NULL and no database keeps NaN payloads (the stale marker) exactly.
* ``rs_histograms``, ``rs_exemplars``, ``rs_metadata``: native histograms,
  exemplars and metric metadata.

Samples and histograms are clustered by (series, timestamp) (SQLite
``WITHOUT ROWID``), so a range read of one series is one index range.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
)

from remote_storage.storage import Labels

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "decode_labels",
    "encode_labels",
    "metadata",
]

FORMAT = "prometheus-remote-storage"
SCHEMA_VERSION = 1

metadata = MetaData()

_ID = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid

meta = Table(
    "rs_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

series = Table(
    "rs_series",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("tenant", Text, nullable=False),
    Column("labels", LargeBinary, nullable=False),
    UniqueConstraint("tenant", "labels", name="rs_series_tenant_labels"),
)

postings = Table(
    "rs_postings",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column("series_id", BigInteger, primary_key=True),
    sqlite_with_rowid=False,
)

samples = Table(
    "rs_samples",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
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

# UTF-8 never contains the byte 0xFF, so it separates names and values unambiguously.
_SEPARATOR = b"\xff"


def encode_labels(labels: Iterable[tuple[str, str]]) -> bytes:
    """Canonical bytes of a sorted label set: ``name 0xFF value 0xFF name ...``."""
    return _SEPARATOR.join(part.encode() for pair in labels for part in pair)


def decode_labels(data: bytes) -> Labels:
    """Inverse of :func:`encode_labels`."""
    if not data:
        return Labels()
    parts = [part.decode() for part in data.split(_SEPARATOR)]
    return Labels(zip(parts[::2], parts[1::2], strict=True))
