"""Sample values: ``random`` or ``realistic`` (counters that count, gauges that wander).

A value model is chosen once per run (:func:`value_model`); the render path
then asks a per-request :class:`ValueBlock` for the values of one scrape of
all the request's series, which is a list slice (``random``) or one list
comprehension (``realistic``), never a branch per sample.

Both models are pure functions of (seed, request template, position in it,
series, scrape number), so :meth:`ValueModel.value` can recompute any one
value on its own; the tests compare rendered bodies with it.

``realistic``: a series of a counter family (``*_total``, ``*_sum``,
``*_count``) grows by a per-series rate, with jitter, at every scrape, and
never decreases; a gauge moves around a per-series level. Both follow one
formula, ``a + scrape * d + q * y``, where ``y`` is a smooth, periodic
random walk bounded by ±0.45: counters have ``d = q = increment`` (so each
step adds between 0.1 and 1.9 increments), gauges ``d = 0``.
"""

from __future__ import annotations

import abc
import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass

from remote_storage.loadgen.catalog import Metric, mix64
from remote_storage.storage import MetricType

__all__ = [
    "RandomValues",
    "RealisticValues",
    "SeriesRef",
    "ValueBlock",
    "ValueMode",
    "ValueModel",
    "value_model",
]

_PERIOD = 4096  # scrapes before the wander of realistic values repeats (17 hours at 15 s)
_POOL = 1 << 16  # distinct random values


class ValueMode(enum.Enum):
    """How sample values are made: ``realistic`` (the default) or uniformly ``random``."""

    REALISTIC = "realistic"
    RANDOM = "random"


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """One series of a request: its number, generation (see churn) and metric family."""

    index: int
    generation: int
    metric: Metric


class ValueBlock(abc.ABC):
    """The values of the series of one request template."""

    @abc.abstractmethod
    def values(self, scrape: int) -> Sequence[float]:
        """One value per series for scrape number ``scrape``."""


class ValueModel(abc.ABC):
    """Makes the :class:`ValueBlock` of a request template; :meth:`value` is the reference."""

    @abc.abstractmethod
    def block(self, template: int, series: Sequence[SeriesRef]) -> ValueBlock:
        """The value source for template ``template`` with these ``series`` in order."""

    @abc.abstractmethod
    def value(self, template: int, position: int, ref: SeriesRef, scrape: int) -> float:
        """The value of one sample, computed on its own (slow; for checks)."""


class _SliceBlock(ValueBlock):
    __slots__ = ("_model", "_size", "_template")

    def __init__(self, model: RandomValues, template: int, size: int) -> None:
        self._model = model
        self._template = template
        self._size = size

    def values(self, scrape: int) -> Sequence[float]:
        start = self._model.offset(self._template, scrape)
        return self._model.pool[start : start + self._size]


class RandomValues(ValueModel):
    """Uniform values in [0, 1000): full-entropy mantissas, the worst case for XOR chunk compression.

    A request's values for one scrape are a slice of a pool of 65,536 values
    at a pseudo-random offset, so each series sees a new random value at
    every scrape.
    """

    def __init__(self, seed: int, max_series_per_request: int) -> None:
        self.seed = seed
        rng = random.Random(mix64(seed, 0x5EED))
        pool = [rng.random() * 1000.0 for _ in range(_POOL)]
        self.pool = pool + pool[:max_series_per_request]

    def offset(self, template: int, scrape: int) -> int:
        return mix64(self.seed, template, scrape) % _POOL

    def block(self, template: int, series: Sequence[SeriesRef]) -> ValueBlock:
        return _SliceBlock(self, template, len(series))

    def value(self, template: int, position: int, ref: SeriesRef, scrape: int) -> float:
        return self.pool[self.offset(template, scrape) + position]


class _FormulaBlock(ValueBlock):
    __slots__ = ("_a", "_d", "_q", "_walk")

    def __init__(self, walk: list[float], a: list[float], d: list[float], q: list[float]) -> None:
        self._walk = walk
        self._a, self._d, self._q = a, d, q

    def values(self, scrape: int) -> Sequence[float]:
        phase = scrape % _PERIOD
        ys = self._walk[phase : phase + len(self._a)]
        return [a + scrape * d + q * y for a, d, q, y in zip(self._a, self._d, self._q, ys, strict=True)]


class RealisticValues(ValueModel):
    """Counters with plausible per-scrape increments and gauges wandering around a level.

    Magnitudes follow the metric name: ``*_bytes_total`` counters grow by
    1 kB to 10 MB per scrape, ``*_seconds_total`` by 0.01 to 3 s, others by
    0.1 to 100; ``*_bytes`` gauges sit between 1 MB and 10 GB, others between
    1 and 1,000, each wandering by 2 to 20 %.
    """

    def __init__(self, seed: int, max_series_per_request: int) -> None:
        self.seed = seed
        rng = random.Random(mix64(seed, 0x3A1C))
        steps = [rng.gauss(0.0, 1.0) for _ in range(_PERIOD)]
        drift = sum(steps) / _PERIOD
        walk, level = [], 0.0
        for step in steps:  # minus the mean step: the walk ends where it started, so it can repeat
            walk.append(level)
            level += step - drift
        middle = (max(walk) + min(walk)) / 2
        scale = 0.45 / max(max(walk) - middle, middle - min(walk), 1e-9)
        walk = [(w - middle) * scale for w in walk]
        self.walk = walk + walk[:max_series_per_request]

    def parameters(self, ref: SeriesRef) -> tuple[float, float, float]:
        """``(a, d, q)`` of the series' formula ``a + scrape * d + q * y``."""
        bits = mix64(self.seed, ref.index, ref.generation)
        u1, u2 = (bits >> 32) / 2.0**32, (bits & 0xFFFFFFFF) / 2.0**32
        name = ref.metric.name
        if ref.metric.type is MetricType.COUNTER:
            if name.endswith("_bytes_total"):
                increment = 10 ** (3 + 4 * u1)
            elif name.endswith(("_seconds_total", "_seconds_sum")):
                increment = 10 ** (-2 + 2.5 * u1)
            else:
                increment = 10 ** (-1 + 3 * u1)
            start = increment * 10 ** (2 + 3 * u2)  # some hours to days of history
            return start, increment, increment
        level = 10 ** (6 + 4 * u1) if name.endswith("_bytes") else 10 ** (3 * u1)
        return level, 0.0, level * (0.04 + 0.4 * u2)

    def block(self, template: int, series: Sequence[SeriesRef]) -> ValueBlock:
        params = [self.parameters(ref) for ref in series]
        return _FormulaBlock(
            self.walk, [p[0] for p in params], [p[1] for p in params], [p[2] for p in params]
        )

    def value(self, template: int, position: int, ref: SeriesRef, scrape: int) -> float:
        a, d, q = self.parameters(ref)
        return a + scrape * d + q * self.walk[(scrape + position) % _PERIOD]


def value_model(mode: ValueMode, seed: int, max_series_per_request: int) -> ValueModel:
    """The value model of ``mode``."""
    if mode is ValueMode.RANDOM:
        return RandomValues(seed, max_series_per_request)
    return RealisticValues(seed, max_series_per_request)
