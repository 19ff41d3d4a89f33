"""An in-memory backend: fast, exact, and gone when the process stops.

``memory://`` keeps every tenant's series in Python dicts, float samples in
sealed XOR chunks plus a small open head per series, as Prometheus' head does
(see :mod:`remote_storage.backends.memory_series`). It is the default
backend, the reference the conformance suite was written against, and the one
to use for tests and demos::

    >>> import asyncio
    >>> from remote_storage.matchers import Matcher
    >>> from remote_storage.storage import Context, Labels, Query, TimeSeries, WriteRequest
    >>> storage = MemoryStorage.from_url("memory://?max_exemplars=1000")
    >>> up = TimeSeries(Labels.from_mapping({"__name__": "up", "job": "node"}), [1000, 2000], [1.0, 0.0])
    >>> async def demo() -> list[TimeSeries]:
    ...     await storage.write(Context(), WriteRequest([up]))
    ...     query = Query(0, 1500, (Matcher.parse("job", "=", "node"),))
    ...     return [series async for series in storage.process_query(Context(), query)]
    >>> [list(s.timestamps) for s in asyncio.run(demo())]
    [[1000]]
"""

from __future__ import annotations

import asyncio
import threading
import time
from array import array
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from operator import attrgetter, gt
from typing import ClassVar, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

from remote_storage import native
from remote_storage.chunks import SAMPLES_PER_CHUNK
from remote_storage.errors import SampleConflict
from remote_storage.matchers import Matcher, MatchType
from remote_storage.storage import (
    DEFAULT_TENANT,
    Context,
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    Query,
    RemoteStorage,
    SampleBatch,
    StorageStats,
    TimeSeries,
    WriteRequest,
    float_bits,
)

from . import InvalidStorageURL
from .memory_series import Conflict, Planned, Series, plan

__all__ = [
    "DEFAULT_KEY_CACHE_SIZE",
    "DEFAULT_MAX_EXEMPLARS",
    "InvalidStorageURL",
    "MemoryStorage",
]

#: Encoding keys remembered per tenant; size it above the tenant's active series.
DEFAULT_KEY_CACHE_SIZE = 1_000_000
#: Exemplars kept per tenant (the oldest are dropped first).
DEFAULT_MAX_EXEMPLARS = 100_000

# Work that may be large runs in threads, so one huge request does not stall
# the event loop; small work (what Prometheus sends and asks for most) runs
# on the loop, where it costs no thread hand-over. These are the bounds.
#: Samples (or series) of a write stored on the loop; larger writes go to the writer thread.
_INLINE_WRITE_SAMPLES = 20_000
#: Seconds a query's regex matchers may spend testing label values on the loop; then a thread takes over.
_INLINE_MATCH_SECONDS = 0.005
#: Label values tested between two looks at the clock.
_CLOCK_EVERY = 4
#: Candidate series a query may filter and sort on the loop; more are handled in a thread.
_INLINE_CANDIDATES = 10_000
#: Series selected (and decoded) per step of a query; the loop is handed back after each.
_FETCH_BATCH = 64
#: Label values or series examined between two checks of a query's deadline.
_DEADLINE_EVERY = 256

_T = TypeVar("_T")

#: ``_Tenant.newest`` of a series without float samples: before every timestamp.
_NONE = -(1 << 63)


# What a new series is planned against; never written to.
_NO_SERIES = Series(Labels())

#: The batch append in C (``_memory_head.c``) when the C implementation runs, else None.
_append_next = native.memory_head.append_next if native.IMPLEMENTATION == "c" and native.memory_head else None
_NOTHING: Planned[Histogram] = ((), ())


# The entries of one write request that go to one series: usually one, so no list.
_Group = TimeSeries | list[TimeSeries]


def _entries(group: _Group) -> list[TimeSeries]:
    return [group] if isinstance(group, TimeSeries) else group


def _floats(group: _Group) -> tuple[Sequence[int], Sequence[float]]:
    if isinstance(group, TimeSeries):
        return group.timestamps, group.values
    return [t for e in group for t in e.timestamps], [v for e in group for v in e.values]


def _histograms(group: _Group) -> tuple[Sequence[int], Sequence[Histogram]]:
    if isinstance(group, TimeSeries):
        histograms: Sequence[Histogram] = group.histograms
    else:
        histograms = [h for e in group for h in e.histograms]
    if not histograms:
        return (), ()
    return [h.timestamp for h in histograms], histograms


class _Tenant:
    """Everything stored for one tenant, with its indexes.

    ``series[id]`` is the series with that id (ids are dense and never
    reused). ``postings[name][value]`` is the set of ids of the series with
    that label, so ``postings[name]`` also lists the values of a name.
    ``keys`` maps encoding keys (:attr:`TimeSeries.key`) to ids.
    ``newest[id]`` is the series' newest float timestamp (:data:`_NONE` when
    it has none), so a request can be checked without touching the series.
    """

    __slots__ = (
        "by_labels",
        "exemplars",
        "histogram_samples",
        "keys",
        "metadata",
        "newest",
        "postings",
        "samples",
        "series",
    )

    def __init__(self, max_exemplars: int) -> None:
        self.series: list[Series] = []
        self.by_labels: dict[Labels, int] = {}
        self.keys: dict[object, int] = {}
        self.newest: array[int] = array("q")
        self.postings: dict[str, dict[str, set[int]]] = {}
        self.exemplars: deque[tuple[Labels, Exemplar]] = deque(maxlen=max_exemplars)
        self.metadata: dict[str, MetricMetadata] = {}
        self.samples = 0
        self.histogram_samples = 0

    def add(self, labels: Labels) -> int:
        """Store a new series; returns its id."""
        series_id = len(self.series)
        self.series.append(Series(labels))
        self.newest.append(_NONE)
        self.by_labels[labels] = series_id
        postings = self.postings
        for name, value in labels:  # get before set: setdefault would build a dict and a set every time
            by_value = postings.get(name)
            if by_value is None:
                by_value = postings[name] = {}
            ids = by_value.get(value)
            if ids is None:
                by_value[value] = {series_id}
            else:
                ids.add(series_id)
        return series_id

    def candidates(
        self, matchers: Iterable[Matcher], accept: Sequence[Callable[[str], bool]]
    ) -> Collection[int]:
        """Ids of the series the index cannot rule out; the caller still filters.

        ``accept[i]`` answers for ``matchers[i]`` whether a value matches
        (the matcher itself, or a set of the values found to match).
        Matchers that reject the empty value (the label must be present) each
        give a postings set: one set for ``=``, the union over the matching
        values otherwise. The sets are intersected smallest first. Matchers
        that accept the empty value cannot narrow and are left to the filter.
        """
        sets: list[set[int]] = []
        for matcher, ok in zip(matchers, accept, strict=True):
            if matcher.matches_empty:
                continue
            by_value = self.postings.get(matcher.name)
            if not by_value:
                return ()
            if matcher.type is MatchType.EQ:
                ids = by_value.get(matcher.value)
            else:
                ids = set().union(*(ids for value, ids in by_value.items() if ok(value)))
            if not ids:
                return ()
            sets.append(ids)
        if not sets:
            return range(len(self.series))
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])


class MemoryStorage(RemoteStorage):
    """Stores every tenant's samples in memory; see the module docstring for an example.

    URL: ``memory://`` with optional query options ``key_cache_size`` (encoding
    keys remembered per tenant, default 1,000,000; 0 turns the cache off) and
    ``max_exemplars`` (exemplars kept per tenant, default 100,000; 0 keeps none).

    **Write path.** A series is found by its encoding key first (the key
    cache, per tenant), so the labels of a known series are never decoded;
    only an unknown key decodes its labels and looks them up in the series
    index. When the cache is full it starts over. Size it above the number of
    active series of a tenant: Prometheus sends every series each scrape
    interval, so an undersized cache keeps missing (still correct, one label
    decode per series). Keys never go stale, since series are never deleted.

    The request Prometheus sends most, every series known and one sample
    after its newest (:attr:`WriteRequest.batch`), is checked and stored row
    by row from the request's columns, without grouping it by series first.

    **Ordering and duplicates.** Samples may arrive in any order and are
    inserted at their place. A sample whose timestamp is already stored (or
    appears twice in one request) with the same 64 value bits is a no-op, so
    retries are harmless; with other bits the write raises
    :class:`~remote_storage.errors.SampleConflict`. Native histograms follow
    the same rule, comparing every field (floats by their bits). Floats and
    histograms are kept apart, so a series may hold one of each at a timestamp.

    **Storage.** Float samples are kept as Prometheus keeps them in its head:
    sealed XOR chunks of 120 samples (about 1.3 to 5 bytes per sample) plus
    the newest samples of each series in two arrays, sealed once 120 are
    there. A late sample is inserted into the chunk that holds its time (the
    chunk is decoded and encoded again, rare and slow). Queries decode only the
    chunks that meet their range; streamed reads (``Query.accept_chunks``) get
    the chunks as stored. :meth:`chunk_bytes` and :meth:`memory_bytes` report
    what the samples take.

    **Atomicity.** Every series of a request is checked before any is
    changed, with no ``await`` in between: a request that raises stores
    nothing, metadata and exemplars included.

    **Queries** use an inverted index (see :meth:`_Tenant.candidates`); the
    number of series they examined after narrowing is counted in
    :attr:`series_examined`. Values are never touched by arithmetic, so every
    NaN payload (the stale marker ``0x7ff0000000000002`` included) round-trips.

    Exemplars are kept in a bounded buffer per tenant (:meth:`exemplars`) and
    not returned by queries; metadata keeps the latest entry per metric family
    (:meth:`metadata`).

    **Threads.** One lock guards all stored data. Small writes and queries
    (the usual ones) run on the event loop when the lock is free; large
    writes (above 20,000 samples) run on one writer thread, queries whose
    regex matchers must test many label values or that select many series
    run their selection in a thread, so the event loop keeps serving other
    requests meanwhile. A write holds the lock from its check to its last
    change, so it stays atomic: a query reads its series in label order, a
    step of 64 at a time under the lock, and a concurrent write lands
    between two steps (series read after it hold all of it, those read
    before none of it). Regex
    matchers are tested against the distinct label values (outside the
    lock), never series by series. A query checks ``ctx.deadline`` while
    it works, also in threads, and stops with :class:`TimeoutError` once
    it has passed. The backend serves one event loop at a time.
    """

    OPTIONS: ClassVar[tuple[str, ...]] = ("key_cache_size", "max_exemplars")

    def __init__(
        self,
        *,
        key_cache_size: int = DEFAULT_KEY_CACHE_SIZE,
        max_exemplars: int = DEFAULT_MAX_EXEMPLARS,
    ) -> None:
        for name, value in (("key_cache_size", key_cache_size), ("max_exemplars", max_exemplars)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        self.key_cache_size = key_cache_size
        self.max_exemplars = max_exemplars
        self._tenants: dict[str, _Tenant] = {}
        #: Series examined by queries after index narrowing (for tests and debugging).
        self.series_examined = 0
        self._lock = threading.Lock()  # guards everything in _tenants
        self._queued = 0  # threads waiting for the lock: the loop then queues behind them
        self._writer: ThreadPoolExecutor | None = None  # made on the first large write

    @classmethod
    def from_url(cls, url: str) -> MemoryStorage:
        """Build from ``memory://`` plus optional ``?key_cache_size=N&max_exemplars=N``."""
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise InvalidStorageURL(url, str(exc)) from None
        if parts.scheme.lower() != "memory":
            raise InvalidStorageURL(url, f"scheme {parts.scheme!r} is not 'memory'")
        if parts.netloc or parts.path or parts.fragment:
            raise InvalidStorageURL(url, "memory:// takes no host, path or fragment, only ?options")
        try:
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError as exc:
            raise InvalidStorageURL(url, f"malformed query string ({exc})") from None
        options: dict[str, int] = {}
        known = ", ".join(cls.OPTIONS)
        for name, text in pairs:
            if name not in cls.OPTIONS:
                raise InvalidStorageURL(url, f"unknown option {name!r} (known options: {known})")
            if name in options:
                raise InvalidStorageURL(url, f"option {name!r} is given more than once")
            try:
                options[name] = int(text, 10)
            except ValueError:
                raise InvalidStorageURL(
                    url, f"option {name!r} must be an integer >= 0, got {text!r}"
                ) from None
        try:
            return cls(**options)
        except ValueError as exc:
            raise InvalidStorageURL(url, str(exc)) from None

    def describe(self) -> str:
        return f"memory (key_cache_size={self.key_cache_size}, max_exemplars={self.max_exemplars})"

    def _tenant(self, name: str) -> _Tenant:
        tenant = self._tenants.get(name)
        if tenant is None:
            tenant = self._tenants[name] = _Tenant(self.max_exemplars)
        return tenant

    def _group(self, tenant: _Tenant, request: WriteRequest) -> dict[int | Labels, _Group]:
        """The request's entries by series: existing ones by id, new ones by labels.

        A series is looked up by its entry's key first; only an unknown key
        decodes the labels.
        """
        groups: dict[int | Labels, _Group] = {}
        keys, cache_size = tenant.keys, self.key_cache_size
        for entry in request.series:
            if not (entry.timestamps or entry.histograms or entry.exemplars):
                continue
            target: int | Labels | None = keys.get(entry.key) if cache_size else None
            if target is None:
                labels = entry.labels
                target = tenant.by_labels.get(labels)
                if target is None:
                    target = labels
                else:
                    self._remember(tenant, entry.key, target)
            group = groups.get(target)
            if group is None:
                groups[target] = entry
            elif isinstance(group, TimeSeries):
                groups[target] = [group, entry]
            else:
                group.append(entry)
        return groups

    def _remember(self, tenant: _Tenant, key: object, series_id: int) -> None:
        if not self.key_cache_size:
            return
        if len(tenant.keys) >= self.key_cache_size:
            tenant.keys.clear()  # start over: cheaper than keeping an order on every hit
        tenant.keys[key] = series_id

    def _write_batch(self, tenant: _Tenant, batch: SampleBatch) -> bool:
        """Store a batch whose rows are each a known series' next sample; else store nothing, return False.

        Every row is checked before any is stored: its key is in the cache
        and each timestamp is after the series' newest. Anything else (new
        series, late or repeated samples, a conflict to report) takes the
        general path. The C append also takes a series named twice with
        rising timestamps, which the Python loop leaves to the general path
        (both store the same samples).
        """
        found = list(map(tenant.keys.get, batch.keys))
        if None in found:
            return False
        ids = cast("list[int]", found)
        newest = tenant.newest
        timestamps = batch.timestamps
        series = tenant.series
        if _append_next is not None:  # checks and stores in C
            full = _append_next(series, newest, ids, timestamps, batch.values, SAMPLES_PER_CHUNK)
            if full is None:
                return False
            for target in full:
                target._seal()
        else:
            if len(set(ids)) != len(ids) or not all(map(gt, timestamps, map(newest.__getitem__, ids))):
                return False
            for series_id, timestamp, value in zip(ids, timestamps, batch.values, strict=True):
                target = series[series_id]
                head = target.head_ts
                head.append(timestamp)
                target.head_values.append(value)
                if len(head) >= SAMPLES_PER_CHUNK:
                    target._seal()  # the full head becomes a chunk, as add_floats does
                newest[series_id] = timestamp
        tenant.samples += len(ids)
        return True

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        writer = self._writer
        if writer is None:
            writer = self._writer = ThreadPoolExecutor(1, thread_name_prefix="memory-storage-writer")
        work = partial(self._write_now, ctx.tenant, request)
        await self._locked(work, inline=_small(request), executor=writer)

    async def _locked(
        self, work: Callable[[], _T], *, inline: bool, executor: ThreadPoolExecutor | None = None
    ) -> _T:
        """``work()`` under the data lock: on the loop if ``inline`` and the lock is free, else a thread."""
        if inline and not self._queued and self._lock.acquire(blocking=False):
            try:
                return work()
            finally:
                self._lock.release()
        self._queued += 1  # counted before the thread runs, so the loop stops taking the lock at once
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, self._run_locked, work)
        finally:
            self._queued -= 1

    def _run_locked(self, work: Callable[[], _T]) -> _T:
        with self._lock:
            return work()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, writer.shutdown)

    def _write_now(self, tenant_name: str, request: WriteRequest) -> None:
        """Check, then store, a whole request (the caller holds the lock)."""
        tenant = self._tenant(tenant_name)
        # Check everything first ...
        plans: list[tuple[int | Labels, _Group, Planned[float], Planned[Histogram]]] = []
        batch = request.batch
        if batch is not None and self._write_batch(tenant, batch):
            for metadata in request.metadata:
                tenant.metadata[metadata.family] = metadata
            return
        for target, group in self._group(tenant, request).items():
            if type(target) is int and type(group) is TimeSeries and not group.histograms:
                # The hot path: a known series gets one new sample after its newest.
                ts = group.timestamps
                if len(ts) == 1:
                    last = tenant.series[target].last_float()
                    if last is None or ts[0] > last:
                        plans.append((target, group, (ts, group.values), _NOTHING))
                        continue
            stored = _NO_SERIES if isinstance(target, Labels) else tenant.series[target]
            ts, values = _floats(group)
            hts, histograms = _histograms(group)
            try:
                floats = plan(ts, values, stored.last_float(), stored.float_finder, float_bits)
                hists: Planned[Histogram] = ((), ())
                if hts:
                    last = stored.last_histogram()
                    hists = plan(hts, histograms, last, stored.histogram_finder, Histogram.identity)
            except Conflict as conflict:
                labels = target if isinstance(target, Labels) else stored.labels
                raise _sample_conflict(labels, conflict) from None
            plans.append((target, group, floats, hists))
        # ... then apply, with no await in between.
        for target, group, (new_ts, new_values), (new_hts, new_histograms) in plans:
            series_id: int | None = None
            if isinstance(target, int):
                series_id = target
            elif new_ts or new_hts:
                series_id = tenant.add(target)
                for entry in _entries(group):
                    self._remember(tenant, entry.key, series_id)
            if series_id is not None:  # exemplars alone create no series
                series = tenant.series[series_id]
                series.add_floats(new_ts, new_values)
                if new_ts:
                    newest = series.last_float()
                    tenant.newest[series_id] = _NONE if newest is None else newest
                if new_hts:
                    series.add_histograms(new_hts, new_histograms)
                tenant.samples += len(new_ts)
                tenant.histogram_samples += len(new_hts)
            if isinstance(group, list) or group.exemplars:
                labels = target if isinstance(target, Labels) else tenant.series[target].labels
                for entry in _entries(group):
                    tenant.exemplars.extend((labels, exemplar) for exemplar in entry.exemplars)
        for metadata in request.metadata:
            tenant.metadata[metadata.family] = metadata

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        tenant = self._tenants.get(ctx.tenant)
        if tenant is None:
            return
        deadline = ctx.deadline
        selected = await self._locked(partial(self._select, tenant, query, deadline, True), inline=True)
        if selected is None:  # too much for the loop
            accept = await asyncio.to_thread(self._accepted_values, tenant, query, deadline)
            assert accept is not None
            work = partial(self._select, tenant, query, deadline, False, accept)
            selected = await self._locked(work, inline=False)
            assert selected is not None
        start, end, accept_chunks = query.start_ms, query.end_ms, query.accept_chunks

        def fetch(batch: list[Series]) -> list[TimeSeries]:
            # Selected now, not above: writes may have run since.
            found = [series.select(start, end, accept_chunks=accept_chunks) for series in batch]
            return [series for series in found if series is not None]

        for first in range(0, len(selected), _FETCH_BATCH):
            _check_deadline(deadline)
            for series in await self._locked(
                partial(fetch, selected[first : first + _FETCH_BATCH]), inline=True
            ):
                yield series
            await asyncio.sleep(0)

    def _accepted_values(
        self, tenant: _Tenant, query: Query, deadline: float | None, until: float | None = None
    ) -> list[Callable[[str], bool]] | None:
        """For each matcher, a test of a value: regex matchers as the set of the label's values that match.

        Regex matchers are tested once per distinct value of their label,
        never once per series. With ``until`` (a :func:`time.perf_counter`
        instant) the caller holds the lock and is on the event loop: None
        when the tests take longer than that. Without it this runs in a
        thread: the values are copied under the lock, then tested outside
        it, checking ``deadline`` as it goes.
        """
        accept: list[Callable[[str], bool]] = []
        for matcher in query.matchers:
            if matcher.type in (MatchType.EQ, MatchType.NEQ):
                accept.append(matcher.matches)
                continue
            if until is None:
                with self._lock:
                    values: Iterable[str] = list(tenant.postings.get(matcher.name, ()))
            else:
                values = tenant.postings.get(matcher.name, ())
            matched = {""} if matcher.matches_empty else set()
            for i, value in enumerate(values):
                if i % _DEADLINE_EVERY == 0:
                    _check_deadline(deadline)
                if until is not None and i % _CLOCK_EVERY == 0 and time.perf_counter() > until:
                    return None
                if matcher.matches(value):
                    matched.add(value)
            accept.append(matched.__contains__)
        return accept

    def _select(
        self,
        tenant: _Tenant,
        query: Query,
        deadline: float | None,
        inline: bool,
        accept: Sequence[Callable[[str], bool]] | None = None,
    ) -> list[Series] | None:
        """The series of ``query`` with data in its range, sorted (the caller holds the lock).

        ``inline``: None instead when it would take too long for the event
        loop (regex tests over :data:`_INLINE_MATCH_SECONDS`, or too many candidates).
        """
        matchers = query.matchers
        if accept is None:
            accept = self._accepted_values(
                tenant, query, deadline, time.perf_counter() + _INLINE_MATCH_SECONDS if inline else None
            )
            if accept is None:
                return None
        candidates = tenant.candidates(matchers, accept)
        if inline and len(candidates) > _INLINE_CANDIDATES:
            return None
        self.series_examined += len(candidates)
        filters = [(m.name, ok) for m, ok in zip(matchers, accept, strict=True) if m.matches_empty]
        start, end = query.start_ms, query.end_ms
        selected = []
        for i, series in enumerate(map(tenant.series.__getitem__, candidates)):
            if i % _DEADLINE_EVERY == 0:
                _check_deadline(deadline)
            labels = series.labels
            if all(ok(labels.get(name)) for name, ok in filters) and series.meets(start, end):
                selected.append(series)
        selected.sort(key=attrgetter("labels"))
        return selected

    async def stats(self) -> StorageStats:
        def figures() -> StorageStats:
            return StorageStats(
                series=self.series_count(),
                sample_bytes=self.memory_bytes(),
                sealed_chunk_bytes=self.chunk_bytes(),
                sealed_samples=self.sealed_sample_count(),
            )

        # It visits every series: in a thread, unless there are few.
        return await self._locked(figures, inline=self.series_count() <= _INLINE_CANDIDATES)

    def series_count(self, tenant: str | None = None) -> int:
        """Series stored for ``tenant``, or for all tenants when None."""
        return sum(len(t.series) for t in self._select_tenants(tenant))

    def sample_count(self, tenant: str | None = None) -> int:
        """Float samples stored for ``tenant``, or for all tenants when None."""
        return sum(t.samples for t in self._select_tenants(tenant))

    def chunk_bytes(self, tenant: str | None = None) -> int:
        """Bytes of the sealed XOR chunks' data for ``tenant``, or for all tenants when None."""
        return sum(s.chunk_bytes() for t in self._select_tenants(tenant) for s in t.series)

    def sealed_sample_count(self, tenant: str | None = None) -> int:
        """Float samples inside sealed chunks for ``tenant``, or for all tenants when None."""
        return sum(s.sealed_samples() for t in self._select_tenants(tenant) for s in t.series)

    def memory_bytes(self, tenant: str | None = None) -> int:
        """Approximate bytes held by float sample data: chunk objects, chunk records and heads.

        Labels, indexes, histograms and exemplars are not counted.
        """
        return sum(s.memory_bytes() for t in self._select_tenants(tenant) for s in t.series)

    def histogram_count(self, tenant: str | None = None) -> int:
        """Native-histogram samples stored for ``tenant``, or for all tenants when None."""
        return sum(t.histogram_samples for t in self._select_tenants(tenant))

    def tenants(self) -> list[str]:
        """Names of the tenants that have written, sorted."""
        return sorted(self._tenants)

    async def metadata(self, ctx: Context) -> dict[str, MetricMetadata]:
        """The latest metadata per metric family sent by ``ctx.tenant``."""
        found = self._tenants.get(ctx.tenant)
        if found is None:
            return {}
        return await self._locked(partial(dict, found.metadata), inline=True)

    def exemplars(self, tenant: str = DEFAULT_TENANT) -> list[tuple[Labels, Exemplar]]:
        """The exemplars kept for ``tenant`` with their series' labels, oldest first."""
        found = self._tenants.get(tenant)
        return list(found.exemplars) if found else []

    def _select_tenants(self, tenant: str | None) -> Iterable[_Tenant]:
        if tenant is None:
            return self._tenants.values()
        found = self._tenants.get(tenant)
        return (found,) if found else ()


def _small(request: WriteRequest) -> bool:
    """Whether a write is small enough to be stored on the event loop."""
    batch = request.batch
    if batch is not None:
        return len(batch) <= _INLINE_WRITE_SAMPLES
    series = request.series
    return len(series) <= _INLINE_WRITE_SAMPLES and request.sample_count <= _INLINE_WRITE_SAMPLES


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError("the query's deadline passed")


def _sample_conflict(labels: Labels, conflict: Conflict) -> SampleConflict:
    stored, sent = conflict.stored, conflict.sent
    if isinstance(stored, Histogram) and isinstance(sent, Histogram):
        # SampleConflict carries floats; a histogram is reported by its sum.
        return SampleConflict(str(labels), conflict.timestamp, stored.sum, sent.sum)
    assert isinstance(stored, int | float) and isinstance(sent, int | float)
    return SampleConflict(str(labels), conflict.timestamp, float(stored), float(sent))
