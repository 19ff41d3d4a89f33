"""Quantiles of a stream of observations over a sliding time window, in bounded memory.

This is what the Go client's summary does, so the two report the same kind
of estimate:

* :class:`TargetedQuantiles` is the CKMS algorithm ("Effective Computation
  of Biased Quantiles over Data Streams", Cormode, Korn, Muthukrishnan,
  Srivastava, 2005) for a set of targets, each a quantile and the rank error
  allowed for it, after the Go package ``beorn7/perks``. It keeps a small
  sorted summary instead of every observation; observations are buffered
  and merged 500 at a time. Unlike perks, it keeps the asked error: perks'
  estimates can miss by more (about 20% more for the median at 0.05, and
  far more for values arriving in descending order), because the targeted
  invariant allows more uncertainty below a target rank than the query
  assumes. Here a new value's uncertainty is also bounded by its
  successor's (Greenwald-Khanna), the invariant is kept with a tighter
  error, and a query answers with the kept value whose possible ranks are
  nearest the wanted one. ``tests/instrument/test_summary.py`` checks the
  error on sorted, reversed, interleaved and random streams.
* :class:`SlidingQuantiles` keeps ``age_buckets`` such streams and feeds
  every observation to all of them; every ``max_age / age_buckets`` seconds
  the oldest is cleared and becomes the newest. Quantiles are read from the
  oldest, which holds between ``max_age - max_age / age_buckets`` and
  ``max_age`` seconds of observations.

Neither is thread-safe; the summary holds its lock around them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["SlidingQuantiles", "TargetedQuantiles"]

_BUFFER = 500


class _Entry:
    """One kept observation: its value, how many ranks it stands for, and its rank uncertainty."""

    __slots__ = ("delta", "value", "width")

    def __init__(self, value: float, width: float, delta: float) -> None:
        self.value = value
        self.width = width
        self.delta = delta


class TargetedQuantiles:
    """Estimates of chosen quantiles of everything inserted, each within its rank error.

    ``targets`` maps a quantile (0 < q < 1) to the rank error allowed for it
    (0 < e < 1): the estimate of q is an observation whose rank is within
    ``e * n`` of ``q * n``.
    """

    __slots__ = ("_buffer", "_entries", "_n", "_targets")

    def __init__(self, targets: Mapping[float, float]) -> None:
        # The invariant is kept with a tighter error, so that the query's error stays within the
        # asked one below the target rank too (the invariant allows more uncertainty there).
        self._targets = tuple((q, error / (1 + 2 * error / (1 - q))) for q, error in sorted(targets.items()))
        self._entries: list[_Entry] = []
        self._buffer: list[float] = []
        self._n = 0.0

    def insert(self, value: float) -> None:
        self._buffer.append(value)
        if len(self._buffer) >= _BUFFER:
            self._flush()

    def count(self) -> int:
        return int(self._n) + len(self._buffer)

    def reset(self) -> None:
        self._entries.clear()
        self._buffer.clear()
        self._n = 0.0

    def query(self, q: float) -> float:
        """The estimate of quantile ``q`` (NaN if nothing was inserted)."""
        if not self._entries:
            # Fewer observations than one buffer: answer exactly.
            if not self._buffer:
                return math.nan
            ordered = sorted(self._buffer)
            return ordered[max(math.ceil(len(ordered) * q) - 1, 0)]
        self._flush()
        # Each kept value's true rank lies in [rank + width, rank + width + delta]: answer with
        # the one whose worst case is nearest the wanted rank.
        wanted = q * self._n
        best, best_error = math.nan, math.inf
        rank = 0.0
        for entry in self._entries:
            lowest = rank + entry.width
            if lowest - wanted >= best_error:
                break  # every later value is at least as far
            error = max(wanted - lowest, lowest + entry.delta - wanted)
            if error < best_error:
                best, best_error = entry.value, error
            rank = lowest
        return best

    def _allowed(self, rank: float) -> float:
        """The invariant f(r, n): how much rank uncertainty the targets allow at ``rank``."""
        n = self._n
        allowed = math.inf
        for q, error in self._targets:
            f = 2 * error * rank / q if q * n <= rank else 2 * error * (n - rank) / (1 - q)
            if f < allowed:
                allowed = f
        return allowed

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        self._merge(self._buffer)
        self._buffer.clear()

    def _merge(self, ordered: list[float]) -> None:
        entries = self._entries
        rank = 0.0
        i = 0
        for value in ordered:
            while i < len(entries):
                entry = entries[i]
                if entry.value > value:
                    delta = _insert_delta(entry, i, self._allowed(rank))
                    entries.insert(i, _Entry(value, 1.0, delta))
                    break
                rank += entry.width
                i += 1
            else:
                entries.append(_Entry(value, 1.0, 0.0))
            i += 1
            self._n += 1
            rank += 1
        self._compress()

    def _compress(self) -> None:
        entries = self._entries
        if len(entries) < 2:
            return
        last = entries[-1]
        rank = self._n - 1 - last.width
        for i in range(len(entries) - 2, -1, -1):
            entry = entries[i]
            if entry.width + last.width + last.delta <= self._allowed(rank):
                last.width += entry.width
                del entries[i]
            else:
                last = entry
            rank -= entry.width


def _insert_delta(successor: _Entry, index: int, allowed: float) -> float:
    """The rank uncertainty of a value inserted at ``index``, just before ``successor``.

    A new minimum's rank is exact (0). Otherwise the value's rank is no less
    certain than its successor's (Greenwald and Khanna's rule), nor than the
    invariant allows (the CKMS rule, which alone is what perks uses and which
    loses accuracy when values arrive in descending order).
    """
    if index == 0:
        return 0.0
    return max(0.0, min(successor.width + successor.delta - 1, math.floor(allowed) - 1))


class SlidingQuantiles:
    """Quantile estimates over roughly the last ``max_age`` seconds.

    Callers pass the time (:func:`time.monotonic` seconds) to every call, so
    that the window can be tested without waiting.
    """

    __slots__ = ("_bucket_seconds", "_epoch", "_head", "_head_tick", "_hot", "_hot_tick", "_streams")

    def __init__(self, targets: Mapping[float, float], max_age: float, age_buckets: int, now: float) -> None:
        self._streams = [TargetedQuantiles(targets) for _ in range(age_buckets)]
        self._bucket_seconds = max_age / age_buckets
        self._epoch = now
        self._head = 0
        self._head_tick = 0
        # Observations not yet fed to the streams, all from the period _hot_tick.
        self._hot: list[float] = []
        self._hot_tick = 0

    def _tick(self, now: float) -> int:
        return int((now - self._epoch) // self._bucket_seconds)

    def observe(self, value: float, now: float) -> None:
        if self._tick(now) != self._hot_tick:
            self._flush(now)
        self._hot.append(value)
        if len(self._hot) >= _BUFFER:
            self._flush(now)

    def query(self, quantiles: tuple[float, ...], now: float) -> list[float]:
        """Estimates of ``quantiles`` over the window ending ``now``; NaN when it holds nothing."""
        self._flush(now)
        head = self._streams[self._head]
        if head.count() == 0:
            return [math.nan] * len(quantiles)
        return [head.query(q) for q in quantiles]

    def _flush(self, now: float) -> None:
        for value in self._hot:
            for stream in self._streams:
                stream.insert(value)
        self._hot.clear()
        tick = self._hot_tick = self._tick(now)
        # Each period that ended clears the oldest stream, which becomes the newest.
        for _ in range(min(tick - self._head_tick, len(self._streams))):
            self._streams[self._head].reset()
            self._head = (self._head + 1) % len(self._streams)
        self._head_tick = tick
