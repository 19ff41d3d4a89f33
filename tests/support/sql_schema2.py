"""A database of the SQL backend's schema 2 or 3, made without the backend, to test the migrations.

The tables are a frozen copy of schema 2 (the layout of the releases before
schema 3); schema 3 is that plus what the head's own step
(:func:`~remote_storage.backends.sql_head.migrate_head_2_to_3`) adds, the
sealed head blocks ``rs_blocks``: both keep the series index that schema 4
replaced. :func:`store` writes series the way they kept them: the label
set's canonical bytes per series (unique per tenant), postings of name and
value text, float samples as their 64 bits keyed by minute (schema 3: the
older ones sealed into blocks, packed by
:func:`~remote_storage.backends.sql_head.pack`), chunks packed as compaction
packed them, histograms, exemplars, metadata.
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

from remote_storage.backends import sql_head
from remote_storage.backends.sql_chunks import WATERMARK_KEY
from remote_storage.backends.sql_dialect import DIALECTS
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
#: Schema 3's sealed head blocks (created by the head's migration step, not with the others).
blocks = Table(
    "rs_blocks",
    MetaData(),
    Column("series_id", BigInteger, primary_key=True),
    Column("generation", BigInteger, primary_key=True),
    Column("data", LargeBinary, nullable=False),
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


def create(engine: Engine, version: int = 2) -> None:
    """The tables of schema ``version`` (2 or 3) in an empty database."""
    assert version in (2, 3), version
    with engine.begin() as conn:
        metadata.create_all(conn)
        if version == 3:
            sql_head.migrate_head_2_to_3(conn, DIALECTS[engine.dialect.name])
        conn.execute(
            meta.insert(),
            [{"key": "format", "value": FORMAT}, {"key": "schema_version", "value": str(version)}],
        )


def store(
    engine: Engine,
    tenant: str,
    written: Iterable[TimeSeries],
    families: Sequence[MetricMetadata] = (),
    chunked_before: int | None = None,
    sealed_before: int | None = None,
) -> None:
    """Series as schema 2 or 3 stored them; float samples older than ``chunked_before`` go into
    one chunk per series (and the compaction watermark moves there), the others into rows, or
    (schema 3) into a block per series and generation when older than ``sealed_before``, a
    generation's start (and the seal mark moves there)."""
    assert sealed_before is None or sealed_before % GENERATION_MS == 0, sealed_before
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
            sealed = [row for row in rows if sealed_before is not None and row["ts"] < sealed_before]
            for g in sorted({row["generation"] for row in sealed}):
                block = [row for row in sealed if row["generation"] == g]
                data = sql_head.pack([row["ts"] for row in block], [row["value"] for row in block])
                conn.execute(blocks.insert().values(series_id=series_id, generation=g, data=data))
            if len(sealed) < len(rows):
                conn.execute(samples.insert(), rows[len(sealed) :])
            if rows:
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
        if sealed_before is not None:
            conn.execute(meta.delete().where(meta.c.key == sql_head.SEALED_KEY))
            conn.execute(meta.insert().values(key=sql_head.SEALED_KEY, value=str(sealed_before)))
