"""Histogram: observations counted in buckets, alone or as a family of labelled children."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import ClassVar, Unpack

from remote_storage.instrument.family import Child, Family, FamilyOptions
from remote_storage.instrument.local import DEFAULT_FLUSH_INTERVAL, LocalHistogram
from remote_storage.instrument.misuse import InvalidBuckets
from remote_storage.instrument.samples import NO_LABELS, LabelSet, Sample
from remote_storage.instrument.textformat import format_float
from remote_storage.instrument.timers import Timer

__all__ = ["DEFAULT_BUCKETS", "Histogram", "HistogramChild", "exponential_buckets", "linear_buckets"]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    math.inf,
)
"""Upper bounds of histogram buckets, in seconds, when none are given (the same as other clients)."""


class HistogramChild(Child):
    """Observations counted in buckets: an unlabelled :class:`Histogram` or one child of a family."""

    __slots__ = ("_counts", "_sum", "_upper_bounds")

    def __init__(self, upper_bounds: tuple[float, ...], labels: LabelSet = NO_LABELS) -> None:
        super().__init__(labels)
        self._upper_bounds = upper_bounds
        # Per bucket, not cumulative: one increment per observation.
        self._counts = [0] * len(upper_bounds)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        """Record one observation of ``amount``."""
        # NaN compares false with every bound; Prometheus counts it in the +Inf bucket.
        index = bisect_left(self._upper_bounds, amount) if amount == amount else -1
        lock = self._lock
        lock.acquire()
        try:
            self._sum += amount
            self._counts[index] += 1
        finally:
            lock.release()

    def time(self) -> Timer:
        """Observe the duration of a block or of each call, in seconds (see :class:`Timer`)."""
        self._check_updatable()
        return Timer(self.observe)

    def local(self, interval: float | None = DEFAULT_FLUSH_INTERVAL) -> LocalHistogram:
        """Lock-free buckets for one thread that flush into this histogram (see :class:`LocalHistogram`)."""
        return LocalHistogram(self, interval)

    def _merge(self, counts: list[int], total: float) -> None:
        """Add per-bucket counts and their sum in one step (what a local histogram flushes)."""
        lock = self._lock
        lock.acquire()
        try:
            self._sum += total
            mine = self._counts
            for index, count in enumerate(counts):
                mine[index] += count
        finally:
            lock.release()

    def _snapshot(self) -> tuple[list[int], float]:
        lock = self._lock
        lock.acquire()
        try:
            return list(self._counts), self._sum
        finally:
            lock.release()


class Histogram(Family[HistogramChild], HistogramChild):
    """A histogram: observations, such as request durations, counted in buckets.

    Exposed as cumulative ``<name>_bucket{le="..."}`` samples (``+Inf``
    always included), ``<name>_count`` and ``<name>_sum``::

        >>> from remote_storage.instrument import Histogram, Registry, exponential_buckets
        >>> registry = Registry()
        >>> latency = Histogram("latency_seconds", "Latency.", buckets=[0.1, 1.0], registry=registry)
        >>> latency.observe(0.05)
        >>> latency.observe(0.5)
        >>> registry.get_sample_value("latency_seconds_bucket", {"le": "1.0"})
        2.0
        >>> exponential_buckets(0.001, 10, 4)
        (0.001, 0.01, 0.1, 1.0)
    """

    _type = "histogram"
    _reserved_labelnames: ClassVar[Mapping[str, str]] = {"le": "histograms use it for the bucket bounds"}

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
        **options: Unpack[FamilyOptions],
    ) -> None:
        self._upper_bounds = _upper_bounds(name, buckets)
        self._le_values = tuple(map(format_float, self._upper_bounds))
        super().__init__(name, documentation, labelnames, **options)

    def _init_value(self) -> None:
        HistogramChild.__init__(self, self._upper_bounds, self._const_labels)

    def _new_child(self, labels: LabelSet) -> HistogramChild:
        return HistogramChild(self._upper_bounds, labels)

    def _collect_samples(self, children: list[HistogramChild], samples: list[Sample]) -> None:
        append = samples.append
        bucket, count, total = self._name + "_bucket", self._name + "_count", self._name + "_sum"
        le_values = self._le_values
        for child in children:
            counts, sum_ = child._snapshot()
            labels = child._labels
            cumulative = 0
            for le, observations in zip(le_values, counts, strict=True):
                cumulative += observations
                append(Sample(bucket, labels.with_label("le", le), float(cumulative)))
            append(Sample(count, labels, float(cumulative)))
            append(Sample(total, labels, sum_, child._created))


def _upper_bounds(metric: str, buckets: Iterable[float]) -> tuple[float, ...]:
    bounds = tuple(map(float, buckets))
    if any(math.isnan(bound) for bound in bounds) or any(a >= b for a, b in pairwise(bounds)):
        raise InvalidBuckets(metric, bounds)
    if not bounds or bounds[-1] != math.inf:
        bounds += (math.inf,)
    return bounds


def linear_buckets(start: float, width: float, count: int) -> tuple[float, ...]:
    """``count`` bucket bounds: ``start``, then each ``width`` higher (as Go's ``LinearBuckets``).

    The bounds are summed one after the other, as the Go client does, so
    that both write the same ``le`` values. ``+Inf`` is added by the
    histogram.
    """
    if count < 1:
        raise ValueError(f"linear_buckets needs a count of at least 1, not {count!r}")
    if not width > 0:
        raise ValueError(f"linear_buckets needs a positive width, not {width!r}")
    bounds = []
    for _ in range(count):
        bounds.append(float(start))
        start += width
    return tuple(bounds)


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """``count`` bucket bounds: ``start``, then each ``factor`` times the previous (as Go's
    ``ExponentialBuckets``, multiplied one after the other). ``+Inf`` is added by the histogram."""
    if count < 1:
        raise ValueError(f"exponential_buckets needs a count of at least 1, not {count!r}")
    if not start > 0:
        raise ValueError(f"exponential_buckets needs a positive start, not {start!r}")
    if not factor > 1:
        raise ValueError(f"exponential_buckets needs a factor greater than 1, not {factor!r}")
    bounds = []
    for _ in range(count):
        bounds.append(float(start))
        start *= factor
    return tuple(bounds)
