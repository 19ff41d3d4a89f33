"""An in-memory backend: fast, exact, and gone when the process stops.

``memory://`` keeps every tenant's series in Python dicts and compact arrays.
It is the default backend, the reference the conformance suite was written
against, and the one to use for tests and demos::

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
import heapq
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, MutableSequence, Sequence
from itertools import islice
from operator import attrgetter, itemgetter, lt
from typing import ClassVar, TypeVar
from urllib.parse import parse_qsl, urlsplit

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
    TimeSeries,
    WriteRequest,
)

from . import InvalidStorageURL

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

# A query hands the event loop back after this many series, so one huge
# selection does not stall concurrent requests.
_YIELD_EVERY = 1024

_T = TypeVar("_T")
_DOUBLE = struct.Struct("<d")


class _Conflict(Exception):
    """Raised by :func:`_plan`; :meth:`MemoryStorage.write` adds the labels."""

    def __init__(self, timestamp: int, stored: object, sent: object) -> None:
        super().__init__(timestamp)
        self.timestamp = timestamp
        self.stored = stored
        self.sent = sent


_float_identity = _DOUBLE.pack  # the 64 bits: NaN payloads and -0.0 compare as what they are


def _increasing(timestamps: Sequence[int]) -> bool:
    return len(timestamps) < 2 or all(map(lt, timestamps, islice(timestamps, 1, None)))


# Samples planned for one series: sorted, unique timestamps and their values (or histograms).
_Planned = tuple[Sequence[int], Sequence[_T]]


def _plan(
    stored_ts: Sequence[int],
    stored: Sequence[_T],
    timestamps: Sequence[int],
    items: Sequence[_T],
    identity: Callable[[_T], object],
) -> _Planned[_T]:
    """The samples of ``items`` to add to a series, sorted, unique and not yet stored.

    A timestamp already stored (or sent twice) with the same identity is
    dropped; with another identity :class:`_Conflict` is raised. Nothing is
    modified, so a caller can plan a whole request before applying any of it.
    """
    if not timestamps:
        return (), ()
    if (not stored_ts or timestamps[0] > stored_ts[-1]) and _increasing(timestamps):
        return timestamps, items  # the common case: new samples after the newest
    last = stored_ts[-1] if stored_ts else None
    new_ts: list[int] = []
    new_items: list[_T] = []
    previous = -1  # index in ``items`` of the previous sample in time order
    for i in sorted(range(len(timestamps)), key=timestamps.__getitem__):
        t, item = timestamps[i], items[i]
        if previous >= 0 and t == timestamps[previous]:
            if identity(item) != identity(items[previous]):
                raise _Conflict(t, items[previous], item)
            continue
        previous = i
        if last is not None and t <= last:
            j = bisect_left(stored_ts, t)
            if stored_ts[j] == t:
                if identity(stored[j]) != identity(item):
                    raise _Conflict(t, stored[j], item)
                continue
        new_ts.append(t)
        new_items.append(item)
    return new_ts, new_items


def _insert(
    stored_ts: array[int],
    stored: MutableSequence[_T],
    timestamps: Sequence[int],
    items: Sequence[_T],
) -> None:
    """Insert planned samples (sorted, none stored yet) at their place."""
    if not timestamps:
        return
    if not stored_ts or timestamps[0] > stored_ts[-1]:
        stored_ts.extend(timestamps)
        stored.extend(items)
        return
    # Only the tail from the first new timestamp on is rebuilt: late samples
    # are usually recent, so this stays small.
    start = bisect_left(stored_ts, timestamps[0])
    tail = list(
        heapq.merge(
            zip(stored_ts[start:], stored[start:], strict=True),
            zip(timestamps, items, strict=True),
            key=itemgetter(0),
        )
    )
    del stored_ts[start:]
    del stored[start:]
    stored_ts.extend(t for t, _ in tail)
    stored.extend(item for _, item in tail)


class _Series:
    """One stored series: float samples and native histograms, each in time order."""

    __slots__ = ("histogram_ts", "histograms", "labels", "timestamps", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.timestamps: array[int] = array("q")
        self.values: array[float] = array("d")
        self.histogram_ts: array[int] = array("q")
        self.histograms: list[Histogram] = []

    def ranges(self, start: int, end: int) -> tuple[int, int, int, int]:
        ts, hts = self.timestamps, self.histogram_ts
        return bisect_left(ts, start), bisect_right(ts, end), bisect_left(hts, start), bisect_right(hts, end)

    def has_data(self, start: int, end: int) -> bool:
        lo, hi, hlo, hhi = self.ranges(start, end)
        return lo < hi or hlo < hhi

    def select(self, start: int, end: int) -> TimeSeries:
        lo, hi, hlo, hhi = self.ranges(start, end)
        # Slices are copies: later writes do not change a series already handed out.
        return TimeSeries(self.labels, self.timestamps[lo:hi], self.values[lo:hi], self.histograms[hlo:hhi])


# What a new series is planned against; never written to.
_NO_SERIES = _Series(Labels())


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
    ``keys`` maps encoding keys (:attr:`TimeSeries.key`) to ids, least
    recently used first.
    """

    __slots__ = (
        "by_labels",
        "exemplars",
        "histogram_samples",
        "keys",
        "metadata",
        "postings",
        "samples",
        "series",
    )

    def __init__(self, max_exemplars: int) -> None:
        self.series: list[_Series] = []
        self.by_labels: dict[Labels, int] = {}
        self.keys: OrderedDict[object, int] = OrderedDict()
        self.postings: dict[str, dict[str, set[int]]] = {}
        self.exemplars: deque[tuple[Labels, Exemplar]] = deque(maxlen=max_exemplars)
        self.metadata: dict[str, MetricMetadata] = {}
        self.samples = 0
        self.histogram_samples = 0

    def add(self, labels: Labels) -> int:
        """Store a new series; returns its id."""
        series_id = len(self.series)
        self.series.append(_Series(labels))
        self.by_labels[labels] = series_id
        for name, value in labels:
            self.postings.setdefault(name, {}).setdefault(value, set()).add(series_id)
        return series_id

    def candidates(self, matchers: Iterable[Matcher]) -> Collection[int]:
        """Ids of the series the index cannot rule out; the caller still filters.

        Matchers that reject the empty value (the label must be present) each
        give a postings set: one set for ``=``, the union over the matching
        values otherwise. The sets are intersected smallest first. Matchers
        that accept the empty value cannot narrow and are left to the filter.
        """
        sets: list[set[int]] = []
        for matcher in matchers:
            if matcher.matches_empty:
                continue
            by_value = self.postings.get(matcher.name)
            if not by_value:
                return ()
            if matcher.type is MatchType.EQ:
                ids = by_value.get(matcher.value)
            else:
                ids = set().union(*(ids for value, ids in by_value.items() if matcher.matches(value)))
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

    **Write path.** A series is found by its encoding key first (the key cache,
    an LRU per tenant), so the labels of a known series are never decoded;
    only an unknown key decodes its labels and looks them up in the series
    index. Size the cache above the number of active series of a tenant:
    Prometheus sends every series each scrape interval, a cyclic pattern an
    undersized LRU always misses (still correct, one label decode per series).
    Keys never go stale, since series are never deleted.

    **Ordering and duplicates.** Samples may arrive in any order and are
    inserted at their place. A sample whose timestamp is already stored (or
    appears twice in one request) with the same 64 value bits is a no-op, so
    retries are harmless; with other bits the write raises
    :class:`~remote_storage.errors.SampleConflict`. Native histograms follow
    the same rule, comparing every field (floats by their bits). Floats and
    histograms are kept apart, so a series may hold one of each at a timestamp.

    **Atomicity.** Every series of a request is checked before any is
    changed, with no ``await`` in between: a request that raises stores
    nothing, metadata and exemplars included.

    **Queries** use an inverted index (see :meth:`_Tenant.candidates`); the
    number of series they examined after narrowing is counted in
    :attr:`series_examined`. Values are never touched by arithmetic, so every
    NaN payload (the stale marker ``0x7ff0000000000002`` included) round-trips.

    Exemplars are kept in a bounded buffer per tenant (:meth:`exemplars`) and
    not returned by queries; metadata keeps the latest entry per metric family
    (:meth:`metadata`). The backend is meant for one event loop; it is not
    thread-safe.
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
            if target is not None:
                keys.move_to_end(entry.key)
            else:
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
        tenant.keys[key] = series_id
        if len(tenant.keys) > self.key_cache_size:
            tenant.keys.popitem(last=False)

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        tenant = self._tenant(ctx.tenant)
        # Check everything first ...
        plans: list[tuple[int | Labels, _Group, _Planned[float], _Planned[Histogram]]] = []
        for target, group in self._group(tenant, request).items():
            stored = _NO_SERIES if isinstance(target, Labels) else tenant.series[target]
            ts, values = _floats(group)
            hts, histograms = _histograms(group)
            try:
                floats = _plan(stored.timestamps, stored.values, ts, values, _float_identity)
                hists = _plan(stored.histogram_ts, stored.histograms, hts, histograms, Histogram.identity)
            except _Conflict as conflict:
                labels = target if isinstance(target, Labels) else stored.labels
                raise _sample_conflict(labels, conflict) from None
            plans.append((target, group, floats, hists))
        # ... then apply, with no await in between.
        for target, group, (new_ts, new_values), (new_hts, new_histograms) in plans:
            if isinstance(target, int):
                series: _Series | None = tenant.series[target]
            elif new_ts or new_hts:
                series_id = tenant.add(target)
                series = tenant.series[series_id]
                for entry in _entries(group):
                    self._remember(tenant, entry.key, series_id)
            else:
                series = None  # exemplars alone create no series
            if series is not None:
                _insert(series.timestamps, series.values, new_ts, new_values)
                _insert(series.histogram_ts, series.histograms, new_hts, new_histograms)
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
        candidates = tenant.candidates(query.matchers)
        self.series_examined += len(candidates)
        filters = [m for m in query.matchers if m.matches_empty]
        start, end = query.start_ms, query.end_ms
        selected = [
            series
            for series in map(tenant.series.__getitem__, candidates)
            if all(m.matches(series.labels.get(m.name)) for m in filters) and series.has_data(start, end)
        ]
        selected.sort(key=attrgetter("labels"))
        for count, series in enumerate(selected, 1):
            yield series.select(start, end)  # ranges taken now: writes may have run since
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    def series_count(self, tenant: str | None = None) -> int:
        """Series stored for ``tenant``, or for all tenants when None."""
        return sum(len(t.series) for t in self._select_tenants(tenant))

    def sample_count(self, tenant: str | None = None) -> int:
        """Float samples stored for ``tenant``, or for all tenants when None."""
        return sum(t.samples for t in self._select_tenants(tenant))

    def histogram_count(self, tenant: str | None = None) -> int:
        """Native-histogram samples stored for ``tenant``, or for all tenants when None."""
        return sum(t.histogram_samples for t in self._select_tenants(tenant))

    def tenants(self) -> list[str]:
        """Names of the tenants that have written, sorted."""
        return sorted(self._tenants)

    async def metadata(self, ctx: Context) -> dict[str, MetricMetadata]:
        """The latest metadata per metric family sent by ``ctx.tenant``."""
        found = self._tenants.get(ctx.tenant)
        return dict(found.metadata) if found else {}

    def exemplars(self, tenant: str = DEFAULT_TENANT) -> list[tuple[Labels, Exemplar]]:
        """The exemplars kept for ``tenant`` with their series' labels, oldest first."""
        found = self._tenants.get(tenant)
        return list(found.exemplars) if found else []

    def _select_tenants(self, tenant: str | None) -> Iterable[_Tenant]:
        if tenant is None:
            return self._tenants.values()
        found = self._tenants.get(tenant)
        return (found,) if found else ()


def _sample_conflict(labels: Labels, conflict: _Conflict) -> SampleConflict:
    stored, sent = conflict.stored, conflict.sent
    if isinstance(stored, Histogram) and isinstance(sent, Histogram):
        # SampleConflict carries floats; a histogram is reported by its sum.
        return SampleConflict(str(labels), conflict.timestamp, stored.sum, sent.sum)
    assert isinstance(stored, int | float) and isinstance(sent, int | float)
    return SampleConflict(str(labels), conflict.timestamp, float(stored), float(sent))
