"""A storage backend that keeps samples in Parquet files, one per tenant and hour.

Run it, point Prometheus' ``remote_write`` and ``remote_read`` at it::

    python examples/parquet_backend.py --listen 127.0.0.1:9201 --directory /var/lib/metrics

The files are laid out the way pandas, DuckDB, Spark and ``pyarrow.dataset``
read partitioned data (Hive-style directories)::

    /var/lib/metrics/tenant=default/hour=2026-12-05T08/data.parquet

with the columns ``metric`` (string, the metric name), ``labels``
(map<string, string>, every label), ``timestamp`` (timestamp[ms, UTC]) and
``value`` (float64, bit for bit: NaN payloads such as the stale marker
survive). For instance ``SELECT metric, max(value) FROM
'/var/lib/metrics/*/*/*.parquet' GROUP BY metric`` in DuckDB.

How it keeps the contract of :mod:`remote_storage.storage`:

* **Durable before the acknowledgement**: a write is appended to a
  write-ahead log (JSON lines, ``_wal.jsonl``) and ``fsync``-ed before
  ``write`` returns. Every ``--flush-seconds`` (and at close) the hours that
  changed are rewritten as Parquet (a temporary file, ``fsync``, an atomic
  rename, the directory synced) and the log is emptied. At start the log is
  replayed, so a crash loses nothing acknowledged: the Parquet files lag by
  at most one flush interval, the service never does.
* **Batching**: one writer task takes every request waiting in its queue,
  checks each on its own (a conflict fails that request alone) and makes the
  accepted ones durable with one ``fsync`` (group commit).
* **Blocking I/O off the event loop**: file work runs in ``asyncio.to_thread``.
* **Memory**: the hours being written stay in memory; once flushed, all but
  the newest ``KEEP_HOURS`` per tenant are dropped and read from their files.
* **Native histograms** are refused with 400 (``InvalidRequest``); exemplars
  and metadata are not kept (remote read never returns them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remote_storage import Context, Labels, Query, RemoteStorage, SampleConflict, TimeSeries, WriteRequest
from remote_storage.backends import InvalidStorageURL
from remote_storage.errors import InvalidRequest, StorageUnavailable
from remote_storage.storage import float_bits, float_from_bits

HOUR_MS = 3_600_000
KEEP_HOURS = 2  # flushed hours kept in memory per tenant, newest first
WAL = "_wal.jsonl"  # names starting with "_" or "." are not data to pyarrow, Spark, DuckDB globs
SCHEMA = pa.schema(
    [
        ("metric", pa.string()),
        ("labels", pa.map_(pa.string(), pa.string())),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("value", pa.float64()),
    ]
)

Samples = dict[int, int]  # timestamp -> the value's 64 bits
Hour = dict[Labels, Samples]
HourKey = tuple[str, int]  # (tenant, hour number: timestamp // HOUR_MS)
Rows = list[tuple[Labels, int, int]]  # (series, timestamp, value bits)


@dataclass
class _Job:
    tenant: str
    rows: Rows
    done: asyncio.Future[Exception | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ParquetStorage(RemoteStorage):
    """``parquet:///path/to/dir?flush_seconds=10``: see the module docstring."""

    def __init__(self, directory: str | Path, *, flush_seconds: float = 10.0) -> None:
        if not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be > 0, got {flush_seconds}")
        self.directory = Path(directory)
        self.flush_seconds = flush_seconds
        self._hours: dict[HourKey, Hour] = {}  # in memory: the hours being written
        self._dirty: set[HourKey] = set()  # changed since the last flush
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()  # None: stop
        self._writer: asyncio.Task[None] | None = None
        self._wal: int | None = None

    @classmethod
    def from_url(cls, url: str) -> ParquetStorage:
        parts = urlsplit(url)
        if parts.scheme != "parquet" or not parts.path:
            raise InvalidStorageURL(url, "expected parquet:///path/to/directory")
        options = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
        unknown = options.keys() - {"flush_seconds"}
        if unknown:
            raise InvalidStorageURL(url, f"unknown options {sorted(unknown)}; known: flush_seconds")
        try:
            return cls(unquote(parts.path), flush_seconds=float(options.get("flush_seconds", 10.0)))
        except ValueError as exc:
            raise InvalidStorageURL(url, str(exc)) from None

    # -- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        for tenant, rows in await asyncio.to_thread(self._read_wal):  # acknowledged, maybe not flushed
            await self._load_hours(tenant, rows)
            self._apply(tenant, rows)
        await self._flush()
        self._wal = os.open(self.directory / WAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._writer = asyncio.create_task(self._write_loop())

    async def close(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)  # the writer commits what came before, then stops
            await self._writer
            self._writer = None
        await self._flush()
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None

    def describe(self) -> str:
        return f"parquet ({self.directory}, flush every {self.flush_seconds:g}s)"

    # -- writing -------------------------------------------------------------------

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        if request.histogram_count:
            raise InvalidRequest("the parquet backend stores float samples only; drop native histograms")
        rows = [(s.labels, t, float_bits(v)) for s in request.series for t, v in s.samples()]
        if not rows:
            return
        job = _Job(ctx.tenant, rows)
        self._queue.put_nowait(job)
        error = await asyncio.shield(job.done)  # shielded: a sender hanging up does not undo a write
        if error is not None:
            raise error

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = await asyncio.wait_for(self._queue.get(), self.flush_seconds)
            except TimeoutError:
                await self._flush()
                continue
            jobs = []
            for job in [first, *(self._queue.get_nowait() for _ in range(self._queue.qsize()))]:
                if job is None:
                    stopping = True
                else:
                    jobs.append(job)
            await self._commit(jobs)

    async def _commit(self, jobs: list[_Job]) -> None:
        """Check every job on its own, log the accepted ones with one fsync, then publish them."""
        staged: dict[HourKey, Hour] = {}
        accepted: list[tuple[_Job, Rows]] = []
        for job in jobs:
            await self._load_hours(job.tenant, job.rows)
            try:
                new = self._new_rows(job.tenant, job.rows, staged)
            except SampleConflict as conflict:
                job.done.set_result(conflict)
                continue
            for labels, t, bits in new:
                staged.setdefault((job.tenant, t // HOUR_MS), {}).setdefault(labels, {})[t] = bits
            accepted.append((job, new))
        lines = "".join(_wal_line(job.tenant, new) for job, new in accepted if new)
        try:
            if lines:
                await asyncio.to_thread(self._append_wal, lines.encode())
        except OSError as exc:
            for job, _ in accepted:
                job.done.set_result(StorageUnavailable(f"the parquet backend could not write its log: {exc}"))
            return
        for job, new in accepted:
            self._apply(job.tenant, new)
            job.done.set_result(None)

    def _new_rows(self, tenant: str, rows: Rows, staged: dict[HourKey, Hour]) -> Rows:
        """Rows not stored yet; SampleConflict for a row with other bits than a stored or sent one."""
        new: Rows = []
        sent: dict[tuple[Labels, int], int] = {}
        for labels, t, bits in rows:
            key = (tenant, t // HOUR_MS)
            before = sent.get((labels, t))
            if before is None:
                before = staged.get(key, {}).get(labels, {}).get(t)
            if before is None:
                before = self._hours[key].get(labels, {}).get(t)
            if before is None:
                new.append((labels, t, bits))
                sent[labels, t] = bits
            elif before != bits:
                raise SampleConflict(str(labels), t, float_from_bits(before), float_from_bits(bits))
        return new

    def _apply(self, tenant: str, rows: Rows) -> None:
        for labels, t, bits in rows:
            key = (tenant, t // HOUR_MS)
            self._hours[key].setdefault(labels, {})[t] = bits
            self._dirty.add(key)

    async def _load_hours(self, tenant: str, rows: Rows) -> None:
        for hour in {t // HOUR_MS for _, t, _ in rows}:
            if (tenant, hour) not in self._hours:
                self._hours[tenant, hour] = await asyncio.to_thread(_read_hour, self._path(tenant, hour))

    async def _flush(self) -> None:
        """Rewrite the changed hours as Parquet, empty the log, drop old hours from memory."""
        if not self._dirty:
            return
        for key in sorted(self._dirty):
            await asyncio.to_thread(_write_hour, self._path(*key), self._hours[key])
        self._dirty.clear()
        await asyncio.to_thread(os.truncate, self.directory / WAL, 0)
        newest: dict[str, list[int]] = {}
        for tenant, hour in self._hours:
            newest.setdefault(tenant, []).append(hour)
        for tenant, hours in newest.items():
            for hour in sorted(hours)[:-KEEP_HOURS]:
                del self._hours[tenant, hour]

    def _append_wal(self, data: bytes) -> None:
        assert self._wal is not None, "write before start"
        os.write(self._wal, data)
        os.fsync(self._wal)

    def _read_wal(self) -> list[tuple[str, Rows]]:
        path = self.directory / WAL
        if not path.exists():
            return []
        raw = path.read_bytes()
        whole = raw.rfind(b"\n") + 1  # a torn last line was never acknowledged
        entries = []
        for line in raw[:whole].decode().splitlines():
            tenant, rows = json.loads(line)
            entries.append((tenant, [(Labels(map(tuple, labels)), t, bits) for labels, t, bits in rows]))
        return entries

    def _path(self, tenant: str, hour: int) -> Path:
        start = datetime.fromtimestamp(hour * HOUR_MS / 1000, UTC)
        return (
            self.directory / f"tenant={quote(tenant, safe='')}" / f"hour={start:%Y-%m-%dT%H}" / "data.parquet"
        )

    # -- reading -------------------------------------------------------------------

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        if query.start_ms > query.end_ms:
            return
        selected: dict[Labels, Samples] = {}
        for hour_data in await self._hours_of(ctx.tenant, query.start_ms // HOUR_MS, query.end_ms // HOUR_MS):
            for labels, samples in hour_data.items():
                if all(m.matches(labels.get(m.name)) for m in query.matchers):
                    selected.setdefault(labels, {}).update(samples)
        for labels in sorted(selected):
            samples = selected[labels]
            times = sorted(t for t in samples if query.start_ms <= t <= query.end_ms)
            if times:
                yield TimeSeries(labels, times, [float_from_bits(samples[t]) for t in times])

    async def _hours_of(self, tenant: str, first: int, last: int) -> list[Hour]:
        """The tenant's hours in ``[first, last]``: from memory, else from their files."""
        found = {
            hour: data
            for (name, hour), data in self._hours.items()
            if name == tenant and first <= hour <= last
        }
        for hour in await asyncio.to_thread(self._hours_on_disk, tenant):
            if first <= hour <= last and hour not in found:
                found[hour] = await asyncio.to_thread(_read_hour, self._path(tenant, hour))
        return [found[hour] for hour in sorted(found)]

    def _hours_on_disk(self, tenant: str) -> list[int]:
        hours = []
        for path in (self.directory / f"tenant={quote(tenant, safe='')}").glob("hour=*/data.parquet"):
            start = datetime.strptime(path.parent.name[5:], "%Y-%m-%dT%H").replace(tzinfo=UTC)
            hours.append(int(start.timestamp() * 1000) // HOUR_MS)
        return hours


def _wal_line(tenant: str, rows: Rows) -> str:
    return json.dumps([tenant, [[list(labels), t, bits] for labels, t, bits in rows]]) + "\n"


# Arrow's thread pools are not used (use_threads=False): the work is already
# off the event loop, and fewer threads means a quieter interpreter exit.
def _read_hour(path: Path) -> Hour:
    if not path.exists():
        return {}
    table = pq.read_table(path, columns=["labels", "timestamp", "value"], use_threads=False)
    hour: Hour = {}
    label_sets: dict[tuple[tuple[str, str], ...], Labels] = {}
    times = table.column("timestamp").cast(pa.int64()).to_pylist()
    values = table.column("value").to_pylist()
    for pairs, t, value in zip(table.column("labels").to_pylist(), times, values, strict=True):
        key = tuple(pairs)
        labels = label_sets.get(key)
        if labels is None:
            labels = label_sets[key] = Labels(key)
        hour.setdefault(labels, {})[t] = float_bits(value)
    return hour


def _write_hour(path: Path, hour: Hour) -> None:
    rows = [(labels, t, bits) for labels in sorted(hour) for t, bits in sorted(hour[labels].items())]
    table = pa.table(
        [
            pa.array([labels.metric_name for labels, _, _ in rows], pa.string()),
            pa.array([list(labels) for labels, _, _ in rows], SCHEMA.field("labels").type),
            pa.array([t for _, t, _ in rows], pa.int64()).cast(SCHEMA.field("timestamp").type),
            pa.array([float_from_bits(bits) for _, _, bits in rows], pa.float64()),
        ],
        schema=SCHEMA,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    _fsync(temporary)
    os.replace(temporary, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: Iterable[str] | None = None) -> None:
    from remote_storage.cli import run
    from remote_storage.config import Settings

    parser = argparse.ArgumentParser(description="Serve remote write and read over Parquet files.")
    parser.add_argument("--listen", default="127.0.0.1:9201", help="HOST:PORT to listen on")
    parser.add_argument("--directory", required=True, help="where the Parquet files go")
    parser.add_argument("--flush-seconds", type=float, default=10.0, help="how often hours are rewritten")
    args = parser.parse_args(None if argv is None else list(argv))
    run(ParquetStorage(args.directory, flush_seconds=args.flush_seconds), Settings(listen=args.listen))


if __name__ == "__main__":
    main()
