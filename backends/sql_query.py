"""Read queries of the SQL backend: matchers to SQL, then samples of a batch of series.

Equality and inequality matchers become conditions on the postings table
(``id IN`` / ``id NOT IN`` a postings subquery, which also gives Prometheus'
missing-label semantics). A regular expression is matched with RE2 against
the distinct values the database holds for its label, and becomes an IN list
when that list is short; otherwise it is applied to the candidates' labels
in Python. Every matcher is applied once more to the decoded labels, so the
SQL only has to narrow, never to be exact.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from sqlalchemy import Connection, select

from remote_storage.matchers import Matcher, MatchType
from remote_storage.storage import EncodedChunk, Histogram, Labels

from . import sql_schema as schema
from .sql_compaction import chunk_rows, load_chunks

__all__ = ["MAX_IN", "fetch", "label_values", "select_series"]

#: Values listed in one IN (...) clause.
MAX_IN = 900


def select_series(conn: Connection, tenant: str, matchers: Sequence[Matcher]) -> list[tuple[int, Labels]]:
    """(id, labels) of the tenant's series matching every matcher, sorted by labels."""
    s, p = schema.series, schema.postings
    conditions = [s.c.tenant == tenant]
    for m in matchers:
        postings = select(p.c.series_id).where(p.c.tenant == tenant, p.c.name == m.name)
        if m.type is MatchType.EQ and not m.value:  # the label is absent
            conditions.append(s.c.id.not_in(postings))
        elif m.type is MatchType.NEQ and not m.value:  # the label is present
            conditions.append(s.c.id.in_(postings))
        elif m.type is MatchType.EQ:
            conditions.append(s.c.id.in_(postings.where(p.c.value == m.value)))
        elif m.type is MatchType.NEQ:
            conditions.append(s.c.id.not_in(postings.where(p.c.value == m.value)))
        else:
            existing = label_values(conn, tenant, m.name)
            if m.matches_empty:  # absent, or present with a matching value
                rejected = [v for v in existing if not m.matches(v)]
                if rejected and len(rejected) <= MAX_IN:
                    conditions.append(s.c.id.not_in(postings.where(p.c.value.in_(rejected))))
            else:
                matching = [v for v in existing if m.matches(v)]
                if len(matching) <= MAX_IN:
                    conditions.append(s.c.id.in_(postings.where(p.c.value.in_(matching))))
            # longer lists are left to the Python check below
    rows = conn.execute(select(s.c.id, s.c.labels).where(*conditions)).all()
    result = []
    for series_id, blob in rows:
        labels = schema.decode_labels(bytes(blob))
        values = dict(labels)
        if all(m.matches(values.get(m.name, "")) for m in matchers):
            result.append((series_id, labels))
    result.sort(key=lambda item: item[1])
    return result


def label_values(conn: Connection, tenant: str, name: str) -> list[str]:
    p = schema.postings
    rows = conn.execute(select(p.c.value).where(p.c.tenant == tenant, p.c.name == name).distinct())
    return [value for (value,) in rows]


Fetched = tuple["array[int]", "array[float]", list[Histogram], list[EncodedChunk]]


def fetch(
    conn: Connection, batch: Sequence[tuple[int, Labels]], start: int, end: int, raw_chunks: bool = False
) -> dict[int, Fetched]:
    """Samples, histograms and (with ``raw_chunks``) undecoded chunks in [start, end], by series id.

    Without ``raw_chunks`` chunked samples are decoded, trimmed to the range
    and merged with the row samples; with it, the chunks overlapping the range
    are returned as they are stored.
    """
    ids = [series_id for series_id, _ in batch]
    raw: dict[int, tuple[array[int], array[int]]] = {}
    hists: dict[int, list[Histogram]] = {}
    t, h = schema.samples, schema.histograms
    generations = schema.generations_in(conn, start, end)
    for first in range(0, len(ids), MAX_IN):
        part = ids[first : first + MAX_IN]
        rows = conn.execute(
            select(t.c.series_id, t.c.ts, t.c.value)
            .where(t.c.generation.in_(generations), t.c.series_id.in_(part), t.c.ts.between(start, end))
            .order_by(t.c.series_id, t.c.ts)
        )
        for series_id, ts, value in rows:
            entry = raw.get(series_id)
            if entry is None:
                entry = raw[series_id] = (array("q"), array("q"))
            entry[0].append(ts)
            entry[1].append(value)
        rows = conn.execute(
            select(h.c.series_id, h.c.ts, h.c.data)
            .where(h.c.series_id.in_(part), h.c.ts.between(start, end))
            .order_by(h.c.series_id, h.c.ts)
        )
        for series_id, ts, data in rows:
            hists.setdefault(series_id, []).append(schema.decode_histogram(ts, bytes(data)))
    chunks: dict[int, list[EncodedChunk]] = {}
    if raw_chunks:
        for series_id, min_ts, max_ts, data in chunk_rows(conn, ids, start, end):
            chunks.setdefault(series_id, []).append(EncodedChunk(min_ts, max_ts, bytes(data)))
    for series_id, (chunk_ts, chunk_bits) in () if raw_chunks else load_chunks(conn, ids, start, end).items():
        head = raw.get(series_id)
        if head is None or not head[0]:
            raw[series_id] = (chunk_ts, chunk_bits)
        elif chunk_ts[-1] < head[0][0]:  # the usual case: chunks hold the older samples
            chunk_ts.extend(head[0])
            chunk_bits.extend(head[1])
            raw[series_id] = (chunk_ts, chunk_bits)
        else:  # late samples not compacted yet: interleave (keys never repeat)
            merged = sorted(zip([*chunk_ts, *head[0]], [*chunk_bits, *head[1]], strict=True))
            raw[series_id] = (array("q", [t for t, _ in merged]), array("q", [b for _, b in merged]))
    found: dict[int, Fetched] = {}
    for series_id in raw.keys() | hists.keys() | chunks.keys():
        timestamps, bits = raw.get(series_id, (array("q"), array("q")))
        found[series_id] = (
            timestamps,
            schema.bits_to_floats(bits),
            hists.get(series_id, []),
            chunks.get(series_id, []),
        )
    return found
