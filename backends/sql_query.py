"""Read queries of the SQL backend: matchers to SQL, then samples of a batch of series.

Equality and inequality matchers become conditions on the postings
(``id IN`` / ``id NOT IN`` a postings subquery of the pairs of their label,
from :mod:`.sql_index`'s ``rs_pairs``, which also gives Prometheus'
missing-label semantics). A regular expression is matched with RE2 against
every value the database holds for its label, and becomes an IN list of
pair ids when that list is short; otherwise it is applied to the
candidates' labels in Python. Every matcher is applied once more to the
decoded labels, so the SQL only has to narrow, never to be exact.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Sequence

from sqlalchemy import Connection, Select, select

from remote_storage.chunks import decode_chunk
from remote_storage.matchers import Matcher, MatchType
from remote_storage.storage import EncodedChunk, Histogram

from . import sql_head
from . import sql_schema as schema
from .sql_chunks import encoded_chunks, load_chunks
from .sql_dialect import of
from .sql_index import PairCache, pair_ids_of_name
from .sql_schema import MAX_IN

__all__ = ["Fetched", "fetch", "label_values", "select_series", "sort_by_labels"]


def select_series(
    conn: Connection,
    tenant: str,
    matchers: Sequence[Matcher],
    deadline: float | None = None,
    pairs: PairCache | None = None,
) -> list[tuple[int, bytes]]:
    """(id, encoded labels) of the tenant's series matching every matcher, sorted by labels.

    Regular expressions are tested against every stored value of their
    label, in slices; past ``deadline`` (a :func:`time.monotonic` instant,
    the read's) the work stops with :class:`TimeoutError`, as the read it
    served has already been answered.

    Label sets are rebuilt from their pair ids through ``pairs`` (the
    backend's cache; a fresh one when not given) and stay encoded
    (:func:`~.sql_schema.encode_labels`): a query may select every series,
    and the caller decodes them a batch at a time. They are decoded here
    only for matchers the SQL could not apply exactly.
    """
    s, pt, t = schema.series, schema.pairs, schema.tenants
    owner = select(t.c.id).where(t.c.name == tenant).scalar_subquery()
    conditions = [s.c.tenant_id == owner]
    exact = True  # whether the SQL conditions select exactly the matching series
    for m in matchers:
        named = select(pt.c.id).where(pt.c.tenant_id == owner, pt.c.name == m.name)
        if m.type is MatchType.EQ and not m.value:  # the label is absent
            conditions.append(s.c.id.not_in(_postings_of(conn, named)))
        elif m.type is MatchType.NEQ and not m.value:  # the label is present
            conditions.append(s.c.id.in_(_postings_of(conn, named)))
        elif m.type is MatchType.EQ:
            conditions.append(s.c.id.in_(_postings_of(conn, named.where(pt.c.value == m.value))))
        elif m.type is MatchType.NEQ:
            conditions.append(s.c.id.not_in(_postings_of(conn, named.where(pt.c.value == m.value))))
        else:
            existing = pair_ids_of_name(conn, tenant, m.name)
            if m.matches_empty:  # absent, or present with a matching value
                rejected = _filter(existing, m, False, deadline)
                if len(rejected) > MAX_IN:
                    exact = False
                elif rejected:
                    conditions.append(s.c.id.not_in(_postings_of(conn, rejected)))
            else:
                matching = _filter(existing, m, True, deadline)
                if len(matching) > MAX_IN:
                    exact = False
                else:
                    conditions.append(s.c.id.in_(_postings_of(conn, matching)))
            # longer lists are left to the Python check below
    rows = (pairs or PairCache()).labels(
        conn, schema.statement_rows(conn, select(s.c.id, s.c.pairs).where(*conditions))
    )
    if not exact:
        decoded: dict[tuple[bytes, bytes], tuple[str, str]] = {}
        kept = []
        for row in rows:
            values = dict(schema.decode_labels(row[1], decoded))
            if all(m.matches(values.get(m.name, "")) for m in matchers):
                kept.append(row)
        rows = kept
    return sort_by_labels(rows)


def _postings_of(conn: Connection, pair_ids: Sequence[int] | Select[tuple[int]]) -> Select[tuple[int]]:
    """The ids of the series holding any of these pairs (ids, or a query of ids)."""
    query: Select[tuple[int]] = of(conn).series_of_pairs(conn, schema.series, pair_ids)
    return query


#: Label values tested between two looks at the deadline.
_MATCH_SLICE = 2048


def _filter(pairs: list[tuple[int, str]], matcher: Matcher, keep: bool, deadline: float | None) -> list[int]:
    """Ids of the (pair id, value) pairs whose value ``matcher`` accepts (``keep``) or refuses
    (not ``keep``), checking the deadline."""
    found: list[int] = []
    for start in range(0, len(pairs), _MATCH_SLICE):
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"the read passed its deadline while matching {matcher}")
        found.extend(i for i, v in pairs[start : start + _MATCH_SLICE] if matcher.matches(v) is keep)
    return found


def sort_by_labels(rows: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """``(id, encoded labels)`` rows in the order of their decoded label sets.

    With 0xFF (the separator) turned into 0x00, the bytes compare as the
    label sets do: pair by pair, name then value, a prefix first. That holds
    while no name or value contains a 0x00 byte; otherwise the sets are
    decoded and compared.
    """
    if b"\x00" in b"".join([blob for _, blob in rows]):
        pairs: dict[tuple[bytes, bytes], tuple[str, str]] = {}
        return sorted(rows, key=lambda row: schema.decode_labels(row[1], pairs))
    return sorted(rows, key=lambda row: row[1].replace(b"\xff", b"\x00"))


def label_values(conn: Connection, tenant: str, name: str) -> list[str]:
    """The values the tenant's series hold for label ``name``."""
    return [value for _, value in pair_ids_of_name(conn, tenant, name)]


#: timestamps, values, histograms and chunks of a series (empty ones as empty tuples)
Fetched = tuple[Sequence[int], Sequence[float], Sequence[Histogram], Sequence[EncodedChunk]]
_NO_SAMPLES: tuple[Sequence[int], Sequence[float]] = ((), ())


def fetch(
    conn: Connection, ids: Sequence[int], start: int, end: int, raw_chunks: bool = False
) -> dict[int, Fetched]:
    """Samples, histograms and (with ``raw_chunks``) undecoded chunks in [start, end], by series id.

    Without ``raw_chunks`` chunked samples are decoded, trimmed to the range
    and merged with the row samples; with it, the chunks overlapping the range
    are returned as they are stored, followed by the head's samples encoded
    as chunks (:func:`.sql_head.head_chunks`; as samples when they interleave
    with the stored chunks). Every table is read in the one transaction of
    ``conn`` (begun by the first statement), so a compaction that moves rows
    into chunks meanwhile is seen wholly or not at all.
    """
    raw: dict[int, tuple[array[int], array[int]]] = {}
    head: dict[int, list[EncodedChunk]] = {}
    hists: dict[int, list[Histogram]] = {}
    generations = schema.generations_in(conn, start, end)
    dialect = of(conn)
    mark = dialect.placeholder
    for first in range(0, len(ids), MAX_IN):
        part = ids[first : first + MAX_IN]
        in_part = dialect.marks(len(part))
        if raw_chunks:
            head.update(sql_head.head_chunks(conn, part, start, end, generations))
        else:
            raw.update(sql_head.head_rows(conn, part, start, end, generations))
        rows = schema.driver_rows(
            conn,
            f"SELECT series_id, ts, data FROM {schema.histograms.name} "
            f"WHERE series_id IN ({in_part}) AND ts BETWEEN {mark} AND {mark} ORDER BY series_id, ts",
            [*part, start, end],
        )
        for series_id, ts, data in rows:
            hists.setdefault(series_id, []).append(schema.decode_histogram(ts, bytes(data)))
    chunks: dict[int, list[EncodedChunk]] = {}
    decoded: dict[int, tuple[Sequence[int], Sequence[float]]] = {}
    if raw_chunks:
        chunks = encoded_chunks(conn, ids, start, end)
        for series_id, newer in head.items():
            stored = chunks.get(series_id)
            if stored is None:
                chunks[series_id] = newer
            elif stored[-1].max_time < newer[0].min_time:  # the usual case: chunks hold the older samples
                stored.extend(newer)
            else:  # late samples not compacted yet: handed over as samples, merged by the reader
                timestamps, values = decode_chunk(newer[0].data)
                for chunk in newer[1:]:
                    more_ts, more_values = decode_chunk(chunk.data)
                    timestamps.extend(more_ts)
                    values.extend(more_values)
                decoded[series_id] = (timestamps, values)
    else:
        for series_id, (chunk_ts, chunk_bits) in load_chunks(conn, ids, start, end).items():
            samples = raw.get(series_id)
            if samples is None or not samples[0]:
                raw[series_id] = (chunk_ts, chunk_bits)
            elif chunk_ts[-1] < samples[0][0]:  # the usual case: chunks hold the older samples
                chunk_ts.extend(samples[0])
                chunk_bits.extend(samples[1])
                raw[series_id] = (chunk_ts, chunk_bits)
            else:  # late samples not compacted yet: interleave
                # A sample sent again while it was being compacted by another process can be in
                # both tables (with the same value): it is returned once.
                merged = dict(zip(samples[0], samples[1], strict=True))
                merged.update(zip(chunk_ts, chunk_bits, strict=True))
                order = sorted(merged)
                raw[series_id] = (array("q", order), array("q", map(merged.__getitem__, order)))
    if not raw and not hists and not decoded:  # chunks only: what a streamed read finds
        return {series_id: ((), (), (), found) for series_id, found in chunks.items()}
    for series_id, (raw_ts, raw_bits) in raw.items():
        decoded[series_id] = (raw_ts, schema.bits_to_floats(raw_bits) if raw_bits else ())
    found: dict[int, Fetched] = {}
    for series_id in decoded.keys() | hists.keys() | chunks.keys():
        samples_ts, samples_values = decoded.get(series_id, _NO_SAMPLES)
        found[series_id] = (samples_ts, samples_values, hists.get(series_id, ()), chunks.get(series_id, ()))
    return found
