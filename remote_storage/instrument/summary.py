"""Summary: the count and sum of observations, and optionally their quantiles over a sliding window.

Without quantiles a summary is the cheapest way to get an average (``rate(x_sum) /
rate(x_count)``). With quantiles it also estimates them over the last
``max_age`` seconds, as the Go client does (see
:mod:`remote_storage.instrument.quantiles`)::

    >>> from remote_storage.instrument import Registry, Summary
    >>> registry = Registry()
    >>> latency = Summary("latency_seconds", "Latency.", quantiles=[0.5, 0.9], registry=registry)
    >>> for value in range(1, 101):
    ...     latency.observe(value / 100)
    >>> registry.get_sample_value("latency_seconds", {"quantile": "0.9"})
    0.9
    >>> registry.get_sample_value("latency_seconds_count")
    100.0

Quantiles of different processes cannot be aggregated; prefer a
:class:`~remote_storage.instrument.Histogram` when you will want one
quantile over many instances.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import ClassVar, Unpack

from remote_storage.instrument.family import Child, Family, FamilyOptions
from remote_storage.instrument.misuse import InvalidQuantiles
from remote_storage.instrument.quantiles import SlidingQuantiles
from remote_storage.instrument.samples import NO_LABELS, LabelSet, Sample
from remote_storage.instrument.textformat import format_float
from remote_storage.instrument.timers import Timer

__all__ = ["DEFAULT_MAX_AGE", "Summary", "SummaryChild"]

DEFAULT_MAX_AGE = 600.0
"""Seconds of observations quantiles are estimated over, unless told otherwise (as in Go)."""
DEFAULT_AGE_BUCKETS = 5


class _Window:
    """How a summary's children estimate quantiles: the targets and the window, fixed per family."""

    __slots__ = ("age_buckets", "max_age", "quantiles", "targets")

    def __init__(self, targets: dict[float, float], max_age: float, age_buckets: int) -> None:
        self.targets = targets
        self.quantiles = tuple(sorted(targets))
        self.max_age = max_age
        self.age_buckets = age_buckets

    def new(self) -> SlidingQuantiles:
        return SlidingQuantiles(self.targets, self.max_age, self.age_buckets, time.monotonic())


class SummaryChild(Child):
    """Count, sum and quantile window: an unlabelled :class:`Summary` or one child of a family."""

    __slots__ = ("_count", "_quantiles", "_sum")

    def __init__(self, window: _Window | None = None, labels: LabelSet = NO_LABELS) -> None:
        super().__init__(labels)
        self._count = 0
        self._sum = 0.0
        self._quantiles = window.new() if window is not None else None

    def observe(self, amount: float) -> None:
        """Record one observation of ``amount``."""
        lock = self._lock
        lock.acquire()
        try:
            self._count += 1
            self._sum += amount
            quantiles = self._quantiles
            if quantiles is not None:
                quantiles.observe(amount, time.monotonic())
        finally:
            lock.release()

    def time(self) -> Timer:
        """Observe the duration of a block or of each call, in seconds (see :class:`Timer`)."""
        self._check_updatable()
        return Timer(self.observe)

    def _snapshot(self, quantiles: tuple[float, ...]) -> tuple[int, float, list[float]]:
        lock = self._lock
        lock.acquire()
        try:
            window = self._quantiles
            estimates = window.query(quantiles, time.monotonic()) if window is not None else []
            return self._count, self._sum, estimates
        finally:
            lock.release()


class Summary(Family[SummaryChild], SummaryChild):
    """A summary of observations: ``<name>_count``, ``<name>_sum`` and, if asked, quantiles.

    ``quantiles`` is either a list of quantiles, each estimated within a
    rank error of a tenth of its distance to 0 or 1 (0.5 within 0.05, 0.99
    within 0.001, as in the Go client's old defaults), or a mapping from
    quantile to the rank error allowed for it. Estimates cover the last
    ``max_age`` seconds, renewed in ``age_buckets`` steps; with no
    observations in the window a quantile is NaN.
    """

    _type = "summary"
    _reserved_labelnames: ClassVar[Mapping[str, str]] = {"quantile": "summaries use it for their quantiles"}

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        quantiles: Iterable[float] | Mapping[float, float] = (),
        max_age: float = DEFAULT_MAX_AGE,
        age_buckets: int = DEFAULT_AGE_BUCKETS,
        **options: Unpack[FamilyOptions],
    ) -> None:
        self._window = _window(name, quantiles, max_age, age_buckets)
        quantile_values = self._window.quantiles if self._window is not None else ()
        self._quantile_values = quantile_values
        self._quantile_labels = tuple(map(format_float, quantile_values))
        super().__init__(name, documentation, labelnames, **options)

    def _init_value(self) -> None:
        SummaryChild.__init__(self, self._window, self._const_labels)

    def _new_child(self, labels: LabelSet) -> SummaryChild:
        return SummaryChild(self._window, labels)

    def _collect_samples(self, children: list[SummaryChild], samples: list[Sample]) -> None:
        append = samples.append
        name, count_name, sum_name = self._name, self._name + "_count", self._name + "_sum"
        for child in children:
            count, total, estimates = child._snapshot(self._quantile_values)
            labels = child._labels
            for quantile, estimate in zip(self._quantile_labels, estimates, strict=True):
                append(Sample(name, labels.with_label("quantile", quantile), estimate))
            append(Sample(count_name, labels, float(count)))
            append(Sample(sum_name, labels, total, child._created))


def _window(
    metric: str, quantiles: Iterable[float] | Mapping[float, float], max_age: float, age_buckets: int
) -> _Window | None:
    if isinstance(quantiles, Mapping):
        targets = {float(q): float(error) for q, error in quantiles.items()}
    else:
        targets = {float(q): min(float(q), 1 - float(q)) / 10 for q in quantiles}
    if not targets:
        return None
    for q, error in targets.items():
        if not 0 < q < 1:
            raise InvalidQuantiles(metric, f"quantile {q!r} is not strictly between 0 and 1")
        if not 0 < error < 1:
            raise InvalidQuantiles(metric, f"rank error {error!r} of quantile {q!r} is not between 0 and 1")
    if not (max_age > 0 and math.isfinite(max_age)):
        raise InvalidQuantiles(metric, f"max_age must be a positive number of seconds, not {max_age!r}")
    if isinstance(age_buckets, bool) or not isinstance(age_buckets, int) or age_buckets < 1:
        raise InvalidQuantiles(metric, f"age_buckets must be a positive integer, not {age_buckets!r}")
    return _Window(targets, max_age, age_buckets)
