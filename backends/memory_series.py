"""The samples of one series of the in-memory backend, kept the way Prometheus' head keeps them.

Float samples live in sealed XOR chunks (:mod:`remote_storage.chunks`, at
most :data:`~remote_storage.chunks.SAMPLES_PER_CHUNK` samples each) plus an
open head of the newest samples in two compact arrays. When the head holds
``SAMPLES_PER_CHUNK`` samples it is encoded into one chunk and a new head
starts, so sealed data costs what Prometheus' chunks cost (1.3 to 5 bytes per
sample), or less where the C codec packs them (:func:`~remote_storage.chunks.encode_for_storage`),
and the common write, one sample after the newest, only appends to the
head. The chunks of a series are kept as parallel records (``chunk_min``,
``chunk_max``: first and last timestamps; ``chunks``: the bytes), in time
order and without overlap, all of them before the head.

A late sample (not after the newest chunk) goes into the chunk whose range
holds it, or the nearest one before it: the chunk is decoded, the sample
inserted and the result encoded again, cut into several chunks when it grew
past ``SAMPLES_PER_CHUNK``. That path is rare and slow; checking a timestamp
for a duplicate decodes a chunk only when the timestamp lies in its range.

Native histograms are kept apart, uncompressed, in time order.

Writes come in two steps, so that a request can be checked whole before any
of it is stored: :func:`plan` finds the samples to add (and raises
:class:`Conflict`), :meth:`Series.add_floats`/:meth:`Series.add_histograms`
store them.
"""

from __future__ import annotations

import heapq
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, MutableSequence, Sequence
from itertools import islice, pairwise
from operator import itemgetter, lt
from typing import TypeVar, cast

from remote_storage.chunks import SAMPLES_PER_CHUNK, chunk_samples, decode_chunk, encode_for_storage
from remote_storage.storage import EncodedChunk, Histogram, Labels, TimeSeries

__all__ = ["Conflict", "Planned", "Series", "plan"]

_T = TypeVar("_T")

# Samples planned for one series: sorted, unique timestamps and their values (or histograms).
Planned = tuple[Sequence[int], Sequence[_T]]
# Looks a stored sample up by its timestamp: the value (or histogram), or None.
_Find = Callable[[int], _T | None]


class Conflict(Exception):
    """Raised by :func:`plan`: ``timestamp`` is stored (or sent) as ``stored`` and sent as ``sent``."""

    def __init__(self, timestamp: int, stored: object, sent: object) -> None:
        super().__init__(timestamp)
        self.timestamp = timestamp
        self.stored = stored
        self.sent = sent


def _increasing(timestamps: Sequence[int]) -> bool:
    return all(map(lt, timestamps, islice(timestamps, 1, None)))


def plan(
    timestamps: Sequence[int],
    items: Sequence[_T],
    last: int | None,
    finder: Callable[[], _Find[_T]],
    identity: Callable[[_T], object],
) -> Planned[_T]:
    """The samples of ``items`` to add to a series, sorted, unique and not yet stored.

    ``last`` is the newest stored timestamp (None when there is none);
    ``finder()`` returns a lookup of stored samples by timestamp, asked only
    for timestamps up to ``last``. A timestamp already stored (or sent twice)
    with the same identity is dropped; with another identity :class:`Conflict`
    is raised. Nothing is modified, so a caller can plan a whole request
    before applying any of it.
    """
    if not timestamps:
        return (), ()
    if (last is None or timestamps[0] > last) and (len(timestamps) == 1 or _increasing(timestamps)):
        return timestamps, items  # the common case: new samples after the newest
    find = finder()
    new_ts: list[int] = []
    new_items: list[_T] = []
    previous = -1  # index in ``items`` of the previous sample in time order
    for i in sorted(range(len(timestamps)), key=timestamps.__getitem__):
        t, item = timestamps[i], items[i]
        if previous >= 0 and t == timestamps[previous]:
            if identity(item) != identity(items[previous]):
                raise Conflict(t, items[previous], item)
            continue
        previous = i
        if last is not None and t <= last:
            stored = find(t)
            if stored is not None:
                if identity(stored) != identity(item):
                    raise Conflict(t, stored, item)
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


def _holds(timestamps: Sequence[int], start: int, end: int) -> bool:
    """Whether sorted ``timestamps`` hold one in ``[start, end]``: one bisection, not two."""
    i = bisect_left(timestamps, start)
    return i < len(timestamps) and timestamps[i] <= end


def _find_in(timestamps: Sequence[int], items: Sequence[_T], t: int) -> _T | None:
    i = bisect_left(timestamps, t)
    return items[i] if i < len(timestamps) and timestamps[i] == t else None


def _encode_pieces(timestamps: array[int], values: array[float]) -> tuple[list[int], list[int], list[bytes]]:
    """Samples cut into as few chunks of at most SAMPLES_PER_CHUNK as possible, of even sizes."""
    n = len(timestamps)
    pieces = -(-n // SAMPLES_PER_CHUNK)
    bounds = [p * n // pieces for p in range(pieces + 1)]
    mins, maxes, data = [], [], []
    for lo, hi in pairwise(bounds):
        mins.append(timestamps[lo])
        maxes.append(timestamps[hi - 1])
        data.append(encode_for_storage(timestamps[lo:hi], values[lo:hi]))
    return mins, maxes, data


class Series:
    """One stored series: float samples in sealed chunks and a head, native histograms apart."""

    __slots__ = (
        "chunk_max",
        "chunk_min",
        "chunks",
        "head_ts",
        "head_values",
        "histogram_ts",
        "histograms",
        "labels",
    )

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.head_ts: array[int] = array("q")
        self.head_values: array[float] = array("d")
        # No chunk records until the first chunk is sealed (see _seal): empty
        # tuples read like empty arrays, take no memory of their own and fail
        # loudly if written to.
        self.chunk_min: array[int] = cast("array[int]", ())
        self.chunk_max: array[int] = cast("array[int]", ())
        self.chunks: list[bytes] = cast("list[bytes]", ())
        # Most series never get a histogram: no containers until the first (see add_histograms).
        self.histogram_ts: array[int] = cast("array[int]", ())
        self.histograms: list[Histogram] = cast("list[Histogram]", ())

    # -- floats ----------------------------------------------------------------------

    def last_float(self) -> int | None:
        """The newest float timestamp, or None."""
        if self.head_ts:
            return self.head_ts[-1]
        return self.chunk_max[-1] if self.chunk_max else None

    def float_finder(self) -> _Find[float]:
        """A lookup of stored float values by timestamp; it decodes each chunk at most once."""
        decoded: dict[int, tuple[array[int], array[float]]] = {}

        def find(t: int) -> float | None:
            head = self.head_ts
            if head and t >= head[0]:
                return _find_in(head, self.head_values, t)
            j = bisect_right(self.chunk_min, t) - 1
            if j < 0 or t > self.chunk_max[j]:
                return None
            samples = decoded.get(j)
            if samples is None:
                samples = decoded[j] = decode_chunk(self.chunks[j])
            return _find_in(*samples, t)

        return find

    def add_floats(self, timestamps: Sequence[int], values: Sequence[float]) -> None:
        """Store planned samples (sorted, none stored yet)."""
        if not timestamps:
            return
        head = self.head_ts
        if head and timestamps[0] > head[-1]:  # the common case, spelled out: it is the hot path
            head.extend(timestamps)
            self.head_values.extend(values)
        else:
            chunk_max = self.chunk_max
            if chunk_max and timestamps[0] <= chunk_max[-1]:
                split = bisect_right(timestamps, chunk_max[-1])
                self._add_to_chunks(timestamps[:split], values[:split])
                timestamps, values = timestamps[split:], values[split:]
            _insert(head, self.head_values, timestamps, values)
        if len(head) >= SAMPLES_PER_CHUNK:
            self._seal()

    def _seal(self) -> None:
        """Encode full heads into chunks; fewer than SAMPLES_PER_CHUNK samples stay in the head."""
        head, values = self.head_ts, self.head_values
        n = SAMPLES_PER_CHUNK
        full = len(head) - len(head) % n
        if not self.chunks:  # the first chunk of the series: its records start here
            self.chunk_min, self.chunk_max, self.chunks = array("q"), array("q"), []
        for lo in range(0, full, n):
            self.chunk_min.append(head[lo])
            self.chunk_max.append(head[lo + n - 1])
            self.chunks.append(encode_for_storage(head[lo : lo + n], values[lo : lo + n]))
        del head[:full]
        del values[:full]

    def _add_to_chunks(self, timestamps: Sequence[int], values: Sequence[float]) -> None:
        """Insert samples not after the newest chunk into the chunks that hold their times."""
        chunk_min = self.chunk_min
        groups = []  # (chunk index, first sample, end of samples), in time order
        lo, n = 0, len(timestamps)
        while lo < n:
            j = max(bisect_right(chunk_min, timestamps[lo]) - 1, 0)
            hi = bisect_left(timestamps, chunk_min[j + 1], lo) if j + 1 < len(chunk_min) else n
            groups.append((j, lo, hi))
            lo = hi
        for j, lo, hi in reversed(groups):  # from the end: indexes before j stay valid
            stored_ts, stored_values = decode_chunk(self.chunks[j])
            _insert(stored_ts, stored_values, timestamps[lo:hi], values[lo:hi])
            mins, maxes, data = _encode_pieces(stored_ts, stored_values)
            self.chunk_min[j : j + 1] = array("q", mins)
            self.chunk_max[j : j + 1] = array("q", maxes)
            self.chunks[j : j + 1] = data

    def _chunk_range(self, start: int, end: int) -> tuple[int, int]:
        """Indexes ``lo:hi`` of the chunks whose time range meets ``[start, end]``."""
        return bisect_left(self.chunk_max, start), bisect_right(self.chunk_min, end)

    def _chunks_hold_a_sample(self, lo: int, hi: int, start: int, end: int) -> bool:
        """Whether the chunks ``lo:hi``, which meet ``[start, end]``, have a sample in it."""
        if hi - lo != 1:
            return hi > lo  # of two chunks meeting the range, the first ends in it (max_time is a sample)
        if start <= self.chunk_min[lo] or self.chunk_max[lo] <= end:
            return True  # its first or last sample lies in the range
        timestamps, _ = decode_chunk(self.chunks[lo])  # the range lies inside this chunk
        return _holds(timestamps, start, end)

    def _decoded(self, start: int, end: int) -> tuple[array[int], array[float]]:
        """The float samples in ``[start, end]``, in new arrays."""
        head = self.head_ts
        a, b = bisect_left(head, start), bisect_right(head, end)
        if not self.chunks:  # a young series, all in its head: one copy of each array
            return head[a:b], self.head_values[a:b]
        timestamps: array[int] = array("q")
        values: array[float] = array("d")
        lo, hi = self._chunk_range(start, end)
        for j in range(lo, hi):
            chunk_ts, chunk_values = decode_chunk(self.chunks[j])
            if start <= self.chunk_min[j] and self.chunk_max[j] <= end:
                timestamps += chunk_ts  # the whole chunk is in the range: no bisecting, no slicing
                values += chunk_values
            else:
                c, d = bisect_left(chunk_ts, start), bisect_right(chunk_ts, end)
                timestamps += chunk_ts[c:d]
                values += chunk_values[c:d]
        timestamps += head[a:b]
        values += self.head_values[a:b]
        return timestamps, values

    # -- histograms ------------------------------------------------------------------

    def last_histogram(self) -> int | None:
        """The newest histogram timestamp, or None."""
        return self.histogram_ts[-1] if self.histogram_ts else None

    def histogram_finder(self) -> _Find[Histogram]:
        """A lookup of stored histograms by timestamp."""
        return lambda t: _find_in(self.histogram_ts, self.histograms, t)

    def add_histograms(self, timestamps: Sequence[int], histograms: Sequence[Histogram]) -> None:
        """Store planned histograms (sorted, none stored yet)."""
        if not timestamps:
            return
        if not self.histogram_ts:
            self.histogram_ts, self.histograms = array("q"), []
        _insert(self.histogram_ts, self.histograms, timestamps, histograms)

    def _histogram_range(self, start: int, end: int) -> tuple[int, int]:
        return bisect_left(self.histogram_ts, start), bisect_right(self.histogram_ts, end)

    # -- reading ---------------------------------------------------------------------

    def meets(self, start: int, end: int) -> bool:
        """Whether data may lie in ``[start, end]``: a cheap test that decodes nothing.

        False means nothing is there; after True, :meth:`select` may still find nothing.
        """
        # Asked of every candidate series of a query, so the parts a series
        # lacks (chunks before the first is sealed, histograms) cost nothing.
        if _holds(self.head_ts, start, end):
            return True
        if self.chunks:
            lo, hi = self._chunk_range(start, end)
            if lo < hi:
                return True
        return _holds(self.histogram_ts, start, end)

    def select(self, start: int, end: int, *, accept_chunks: bool = False) -> TimeSeries | None:
        """The data in ``[start, end]``, copied (later writes do not change it), or None if none.

        With ``accept_chunks`` the chunks that meet the range are handed over
        as stored, in :attr:`TimeSeries.chunks`, and only the head is trimmed.
        """
        # Empty parts are the shared empty tuple: a query may select a million
        # series, and every list made per series is one more object to allocate
        # and for the garbage collector to visit.
        histograms: Sequence[Histogram] = ()
        if self.histogram_ts:
            lo, hi = self._histogram_range(start, end)
            histograms = self.histograms[lo:hi]
        if not accept_chunks:
            timestamps, values = self._decoded(start, end)
            if not (timestamps or histograms):
                return None
            return TimeSeries(self.labels, timestamps, values, histograms)
        head = self.head_ts
        a, b = bisect_left(head, start), bisect_right(head, end)
        chunks: Sequence[EncodedChunk] = ()
        if self.chunks:
            lo, hi = self._chunk_range(start, end)
            if a == b and not histograms and not self._chunks_hold_a_sample(lo, hi, start, end):
                return None
            chunks = [
                EncodedChunk(*record)
                for record in zip(
                    self.chunk_min[lo:hi], self.chunk_max[lo:hi], self.chunks[lo:hi], strict=True
                )
            ]
        elif a == b and not histograms:
            return None
        return TimeSeries(self.labels, head[a:b], self.head_values[a:b], histograms, chunks=chunks)

    # -- accounting ------------------------------------------------------------------

    def chunk_bytes(self) -> int:
        """Bytes of the sealed chunks' encoded data."""
        return sum(map(len, self.chunks))

    def sealed_samples(self) -> int:
        """Samples inside the sealed chunks."""
        return sum(map(chunk_samples, self.chunks))

    def memory_bytes(self) -> int:
        """Approximate bytes held by float samples: chunk objects, their records and the head."""
        containers = [self.head_ts, self.head_values]
        if self.chunks:
            containers += [self.chunks, self.chunk_min, self.chunk_max]
        return sum(map(sys.getsizeof, self.chunks)) + sum(map(sys.getsizeof, containers))
