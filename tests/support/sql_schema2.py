"""A database of the SQL backend's schema 2, made without the backend, to test the migrations.

The tables are a frozen copy of schema 2 (the layout of the releases before
schema 3), and :func:`store` writes series the way schema 2 kept them: the
label set's canonical bytes per series (unique per tenant), postings of
name and value text, float samples as their 64 bits keyed by minute,
chunks packed as compaction packed them, histograms, exemplars, metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    select,
)

from remote_storage.backends.sql_chunks import WATERMARK_KEY
from remote_storage.backends.sql_schema import FORMAT, encode_histogram, encode_labels, signed_bits
from remote_storage.chunks import pack_chunk
from remote_storage.storage import MetricMetadata, TimeSeries

__all__ = ["create", "store"]

GENERATION_MS = 60_000

metadata = MetaData()
_ID = BigInteger().with_variant(Integer, "sqlite")

meta = Table(
    "rs_meta", metadata, Column("key", Text, primary_key=True), Column("value", Text, nullable=False)
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
    Column("generation", BigInteger, primary_key=True),
    Column("series_id", BigInteger, primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("value", BigInteger, nullable=False),
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


def create(engine: Engine) -> None:
    """The tables of schema 2 in an empty database."""
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            meta.insert(), [{"key": "format", "value": FORMAT}, {"key": "schema_version", "value": "2"}]
        )


def store(
    engine: Engine,
    tenant: str,
    written: Iterable[TimeSeries],
    families: Sequence[MetricMetadata] = (),
    chunked_before: int | None = None,
) -> None:
    """Series as schema 2 stored them; float samples older than ``chunked_before`` go into one
    chunk per series (and the compaction watermark moves there), the others into rows."""
    with engine.begin() as conn:
        for s in written:
            blob = encode_labels(s.labels)
            conn.execute(series.insert().values(tenant=tenant, labels=blob))
            series_id = conn.execute(
                select(series.c.id).where(series.c.tenant == tenant, series.c.labels == blob)
            ).scalar_one()
            conn.execute(
                postings.insert(),
                [{"tenant": tenant, "name": n, "value": v, "series_id": series_id} for n, v in s.labels],
            )
            pairs = list(zip(s.timestamps, s.values, strict=True))
            old = [(t, v) for t, v in pairs if chunked_before is not None and t < chunked_before]
            if old:
                data = pack_chunk([t for t, _ in old], [v for _, v in old])
                row = {"series_id": series_id, "min_ts": old[0][0], "max_ts": old[-1][0]}
                conn.execute(chunks.insert().values(**row, count=len(old), data=data))
            rows = [
                {"generation": t // GENERATION_MS, "series_id": series_id, "ts": t, "value": signed_bits(v)}
                for t, v in pairs[len(old) :]
            ]
            if rows:
                conn.execute(samples.insert(), rows)
                for g in sorted({row["generation"] for row in rows}):
                    if conn.execute(select(generations).where(generations.c.generation == g)).first() is None:
                        conn.execute(generations.insert().values(generation=g))
            for h in s.histograms:
                conn.execute(
                    histograms.insert().values(series_id=series_id, ts=h.timestamp, data=encode_histogram(h))
                )
            for e in s.exemplars:
                conn.execute(
                    exemplars.insert().values(
                        series_id=series_id,
                        ts=e.timestamp,
                        value=signed_bits(e.value),
                        labels=encode_labels(e.labels),
                    )
                )
        for m in families:
            conn.execute(
                metric_metadata.insert().values(
                    tenant=tenant, family=m.family, type=int(m.type), help=m.help, unit=m.unit
                )
            )
        if chunked_before is not None:
            conn.execute(meta.delete().where(meta.c.key == WATERMARK_KEY))
            conn.execute(meta.insert().values(key=WATERMARK_KEY, value=str(chunked_before)))
