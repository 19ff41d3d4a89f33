"""Writes of the SQL backend: a request becomes a writer :class:`~.sql_writer.Job`, applied in a group.

:meth:`Ingest.job` turns a write request into a job, with the series ids this
process knows already filled in (looked up on the event loop, not in the
writer thread that every write waits for), and refuses a new series whose
label set (or tenant name) the database could not index (``Dialect.index_entry_limit``:
PostgreSQL's 2704 bytes) before it is queued.

:meth:`Ingest.apply_group` is the writer's transaction: it resolves the ids of
the group's series (creating the missing ones with their pairs and postings:
:func:`.sql_index.create_series`), then
applies each job in its own savepoint, so a job that conflicts is rolled back
alone. Series ids are remembered only once their transaction committed.

Samples are inserted with "insert or ignore" on their (series, timestamp)
key. When every sample was new, that is all; when some were already stored
(a retry, or a duplicate within the request), they are compared bit for bit
with what is stored: identical samples are skipped, a different value raises
SampleConflict (and the job's savepoint is rolled back). Samples older than
the compaction watermark are first checked against the chunks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import Connection, select, tuple_

from remote_storage.errors import LabelSetTooLarge, SampleConflict, TenantNameTooLong
from remote_storage.storage import Labels, MetricMetadata, TimeSeries, WriteRequest

from . import sql_head as head
from . import sql_index as series_index
from . import sql_schema as schema
from .sql_chunks import NO_WATERMARK, WATERMARK_KEY, drop_stored_in_chunks
from .sql_dialect import Dialect
from .sql_schema import MAX_IN
from .sql_writer import Job

__all__ = ["MAX_CACHED_IDS", "Ingest"]

#: Series ids remembered by encoding key and by label set (about 200 bytes each).
MAX_CACHED_IDS = 4_000_000

_Ids = dict[str, dict[Hashable, int]]  # tenant -> encoding key or label set -> series id
_Missing = dict[str, dict[Labels, list[tuple[Job, int]]]]  # tenant -> label set -> (job, position)


class Ingest:
    """The write path of one SQL backend: jobs from requests, and the transactions applying them."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        #: newest sample timestamp written (compaction's cutoff follows it); None: nothing yet
        self.newest: int | None = None
        self._watermark = NO_WATERMARK  # read at the start of every write transaction
        self._sealed = head.NOT_SEALED  # likewise
        # per tenant, encoding key and label set -> series id; only ids of committed series
        self._ids: _Ids = {}
        self._cached = 0

    def job(self, tenant: str, request: WriteRequest) -> Job | None:
        """The writer job of a request (None when it holds nothing to write).

        Raises LabelSetTooLarge for a new series or metric family the
        database could not index.
        """
        metadata = list(request.metadata)
        batch = request.batch
        if batch is not None:  # columns: no object per series on the way to the database
            if not batch.keys and not metadata:
                return None
            keys = batch.keys

            def apply_batch(conn: Connection, job: Job) -> None:
                if job.ids:
                    self._insert_samples(conn, job, job.ids, batch.timestamps, batch.value_bits)
                self._write_metadata(conn, job, metadata)

            job = Job(apply_batch, tenant, keys, lambda index: batch.labels(keys[index]))
        else:
            series = request.series
            if not series and not metadata:
                return None

            def apply(conn: Connection, job: Job) -> None:
                self._apply_write(conn, job, series)
                self._write_metadata(conn, job, metadata)

            job = Job(apply, tenant, [s.key for s in series], lambda index: series[index].labels)
        # Series ids this process knows, found here rather than in the writer thread, the one
        # that all writes wait for. The cache only grows between clears and ids never change.
        job.ids = list(map(self._ids.get(tenant, {}).get, job.keys))
        limit = self.dialect.index_entry_limit
        if limit is not None:
            _check_index_limits(tenant, job, metadata, limit, self.dialect.title)
        return job

    # -- the writer's transaction ----------------------------------------------

    def apply_group(self, conn: Connection, group: list[Job]) -> list[BaseException | None]:
        """One transaction of a group, committed: each job's sample conflict, or None.

        The series ids it created are remembered once it committed (never
        before: a transaction that fails takes them with it).
        """
        outcomes: list[BaseException | None] = [None] * len(group)
        new_ids: _Ids = {}
        with conn.begin():
            self._watermark, self._sealed = _read_marks(conn)
            missing: _Missing = {}
            for job in group:
                if job.keys:
                    self._resolve_series(job, new_ids, missing)
            # All the group's new series at once: PostgreSQL writers then take their locks in
            # one order (pairs, then series hashes), and never wait for each other in a circle.
            self._create_series(conn, missing, new_ids)
            for index, job in enumerate(group):
                savepoint = conn.begin_nested()
                try:
                    job.apply(conn, job)
                except SampleConflict as exc:
                    savepoint.rollback()
                    outcomes[index] = exc
                else:
                    savepoint.commit()
        added = sum(map(len, new_ids.values()))
        if self._cached + added > MAX_CACHED_IDS:
            self._ids.clear()  # start over rather than grow without bound; ids are re-read on demand
            self._cached = 0
        for tenant, ids in new_ids.items():
            self._ids.setdefault(tenant, {}).update(ids)
        self._cached += added
        return outcomes

    def _resolve_series(self, job: Job, new_ids: _Ids, missing: _Missing) -> None:
        """Fill ``job.ids`` with the ids known (by encoding key, then label set); note the
        series still missing in ``missing`` (their places in ``job.ids`` are None)."""
        cache = self._ids.get(job.tenant, {})
        pending = new_ids.setdefault(job.tenant, {})
        keys = job.keys
        # Looked up by job() on the event loop while this thread was in the database; the
        # series it did not find may have been created since.
        ids: list[Any] = job.ids if len(job.ids) == len(keys) else list(map(cache.get, keys))
        job.ids = ids
        if None not in ids:
            return
        wanted = missing.setdefault(job.tenant, {})
        for index, series_id in enumerate(ids):
            if series_id is not None:
                continue
            key = keys[index]
            series_id = cache.get(key) or pending.get(key)
            if series_id is None:
                labels = job.labels(index)
                series_id = cache.get(labels) or pending.get(labels)
                if series_id is None:
                    wanted.setdefault(labels, []).append((job, index))
                    continue
                pending[key] = series_id
            ids[index] = series_id

    def _create_series(self, conn: Connection, missing: _Missing, new_ids: _Ids) -> None:
        """Create the series of the group that are missing (or find them, created by another
        process meanwhile), tenant by tenant in order, and fill their places."""
        for tenant in sorted(missing):
            wanted = missing[tenant]
            if not wanted:
                continue
            created = series_index.create_series(conn, self.dialect, tenant, wanted)
            pending = new_ids.setdefault(tenant, {})
            for labels, places in wanted.items():
                series_id = pending[labels] = created[labels]
                for job, position in places:
                    job.ids[position] = series_id
                    pending[job.keys[position]] = series_id

    # -- a job's rows ----------------------------------------------------------

    def _apply_write(self, conn: Connection, job: Job, series: Sequence[TimeSeries]) -> None:
        ids: list[int] = []
        timestamps: list[int] = []
        values: list[float] = []
        hist_rows: list[dict[str, Any]] = []
        exemplar_rows: list[dict[str, Any]] = []
        for s, series_id in zip(series, job.ids, strict=True):
            ts = s.timestamps
            if len(ts) == 1:  # what Prometheus sends: one sample per series
                ids.append(series_id)
                timestamps.append(ts[0])
                values.append(s.values[0])
            elif ts:
                ids.extend([series_id] * len(ts))
                timestamps.extend(ts)
                values.extend(s.values)
            for h in s.histograms:
                data = schema.encode_histogram(h)
                hist_rows.append({"series_id": series_id, "ts": h.timestamp, "data": data})
            for e in s.exemplars:
                exemplar_rows.append(
                    {
                        "series_id": series_id,
                        "ts": e.timestamp,
                        "value": schema.signed_bits(e.value),
                        "labels": schema.encode_labels(e.labels),
                    }
                )
        if ids:
            self._insert_samples(conn, job, ids, timestamps, schema.floats_to_bits(values))
        if hist_rows:
            self._insert_histograms(conn, job, hist_rows)
        if exemplar_rows:
            conn.execute(self.dialect.insert_ignore(schema.exemplars), exemplar_rows)

    def _write_metadata(self, conn: Connection, job: Job, metadata: Sequence[MetricMetadata]) -> None:
        if metadata:
            statement = self.dialect.upsert(
                schema.metric_metadata, ["tenant", "family"], ["type", "help", "unit"]
            )
            latest = {m.family: m for m in metadata}
            conn.execute(
                statement,
                [
                    {
                        "tenant": job.tenant,
                        "family": m.family,
                        "type": int(m.type),
                        "help": m.help,
                        "unit": m.unit,
                    }
                    for m in latest.values()
                ],
            )

    def _insert_samples(
        self, conn: Connection, job: Job, ids: Sequence[int], timestamps: Sequence[int], bits: Sequence[int]
    ) -> None:
        newest = max(timestamps)
        if self.newest is None or newest > self.newest:
            self.newest = newest
        if min(timestamps) >= max(self._watermark, self._sealed):
            # The usual case: every sample newer than the chunks and blocks, so none can be in one.
            # Rows go from the columns to the statements without a tuple each.
            count = len(timestamps)
            rows: Sequence[tuple[int, int, int]] = ()
            inserted = head.insert_rows(conn, ids, timestamps, bits)
        else:

            def conflict(series_id: int, ts: int, stored: int, sent: int) -> Exception:
                return _conflict(job.labels_of(series_id), ts, stored, sent)

            given = list(zip(ids, timestamps, bits, strict=True))
            rows = drop_stored_in_chunks(conn, given, self._watermark, conflict)
            rows = head.drop_stored_in_blocks(conn, rows, self._sealed, conflict)
            count = len(rows)
            if not count:
                return
            inserted = head.insert_rows(conn, *map(list, zip(*rows, strict=True)))
        if inserted == count:
            return
        if not rows:
            rows = list(zip(ids, timestamps, bits, strict=True))
        # Some samples were stored already (or sent twice): compare them bit for bit.
        wanted: dict[tuple[int, int], int] = {}
        for series_id, ts, value in rows:
            previous = wanted.setdefault((series_id, ts), value)
            if previous != value:
                raise _conflict(job.labels_of(series_id), ts, previous, value)
        stored = _stored_values(conn, schema.samples, list(wanted))
        for key, value in wanted.items():
            if key in stored and stored[key] != value:
                raise _conflict(job.labels_of(key[0]), key[1], stored[key], value)

    def _insert_histograms(self, conn: Connection, job: Job, rows: list[dict[str, Any]]) -> None:
        result = conn.execute(self.dialect.insert_ignore(schema.histograms), rows)
        if result.rowcount == len(rows):
            return
        wanted: dict[tuple[int, int], bytes] = {}
        for row in rows:
            key = (row["series_id"], row["ts"])
            previous = wanted.setdefault(key, row["data"])
            if previous != row["data"]:
                raise _histogram_conflict(job.labels_of(key[0]), key[1], previous, row["data"])
        stored = _stored_values(conn, schema.histograms, list(wanted))
        for key, data in wanted.items():
            if key in stored and bytes(stored[key]) != data:
                raise _histogram_conflict(job.labels_of(key[0]), key[1], bytes(stored[key]), data)


def _read_marks(conn: Connection) -> tuple[int, int]:
    """Before which timestamps samples may be in chunks, and in blocks: one statement, read at the
    start of every write transaction (:func:`.sql_chunks.read_watermark`, :func:`.sql_head.read_sealed`)."""
    query = (
        f"SELECT key, value FROM {schema.meta.name} "
        f"WHERE key IN ('{WATERMARK_KEY}', '{head.SEALED_KEY}')"  # spelled out: no statement to compile
    )
    found: dict[str, str] = {key: value for key, value in conn.exec_driver_sql(query)}
    watermark, sealed = found.get(WATERMARK_KEY), found.get(head.SEALED_KEY)
    return (
        NO_WATERMARK if watermark is None else int(watermark),
        head.NOT_SEALED if sealed is None else int(sealed),
    )


def _stored_values(conn: Connection, table: Any, keys: list[tuple[int, int]]) -> dict[tuple[int, int], Any]:
    """What ``table`` (samples or histograms) holds at these (series id, timestamp) keys."""
    stored: dict[tuple[int, int], Any] = {}
    column = table.c.value if "value" in table.c else table.c.data
    for start in range(0, len(keys), MAX_IN):
        part = keys[start : start + MAX_IN]
        if table is schema.samples:  # keyed by generation first
            where = tuple_(table.c.generation, table.c.series_id, table.c.ts).in_(
                [(schema.generation(ts), series_id, ts) for series_id, ts in part]
            )
        else:
            where = tuple_(table.c.series_id, table.c.ts).in_(part)
        rows = conn.execute(select(table.c.series_id, table.c.ts, column).where(where))
        for series_id, ts, value in rows:
            stored[series_id, ts] = value
    return stored


def _check_index_limits(
    tenant: str, job: Job, metadata: Sequence[MetricMetadata], limit: int, database: str
) -> None:
    """Raise LabelSetTooLarge for a new series or metric family the database could not index, and
    TenantNameTooLong for a tenant whose name it could not (checked with new series only).

    Only series whose ids are not known yet are checked: the others are
    stored already, and the usual write costs nothing here.
    """
    if None in job.ids:
        entry = schema.postgresql_tenant_entry_bytes(tenant)
        if entry > limit:
            raise TenantNameTooLong(len(tenant.encode()), entry, limit, schema.TENANTS_INDEX, database)
        checked: set[Hashable] = set()
        for index, series_id in enumerate(job.ids):
            key = job.keys[index]
            if series_id is not None or key in checked:
                continue
            checked.add(key)
            labels = job.labels(index)
            oversized = schema.oversized_postgresql_entry(tenant, labels)
            if oversized is not None:
                name, size = oversized
                raise LabelSetTooLarge(f"label set {_brief(labels)}", size, limit, name, database)
    tenant_bytes = len(tenant.encode())
    for m in metadata:
        size = schema.postgresql_index_entry_bytes(tenant_bytes, len(m.family.encode()))
        if size > limit:
            family = m.family if len(m.family) <= 100 else m.family[:100] + "..."
            raise LabelSetTooLarge(
                f"metric family name {family!r}", size, limit, "rs_metadata_pkey", database
            )


def _brief(labels: Labels, most: int = 200) -> str:
    """The label set as text, cut after ``most`` characters, with its label count."""
    text = str(labels)
    if len(text) > most:
        text = text[:most] + "..."
    return f"{text} ({len(labels)} labels)"


def _conflict(labels: Labels, timestamp: int, stored_bits: int, sent_bits: int) -> SampleConflict:
    stored, sent = schema.bits_to_floats([stored_bits, sent_bits])
    return SampleConflict(str(labels), timestamp, stored, sent)


def _histogram_conflict(labels: Labels, timestamp: int, stored: bytes, sent: bytes) -> SampleConflict:
    stored_sum = schema.decode_histogram(timestamp, stored).sum
    return SampleConflict(str(labels), timestamp, stored_sum, schema.decode_histogram(timestamp, sent).sum)
