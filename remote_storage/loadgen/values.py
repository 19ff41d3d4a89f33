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
never decreases; a gauge moves around a per-series level, or stays where it
is when its family describes state (see below). All follow one formula,
``round((a + scrape * d + q * y) * m) / m``, where ``y`` is a smooth,
periodic random walk bounded by ±0.45: counters have ``d = q = increment``
(so each step adds between 0.1 and 1.9 increments), moving gauges ``d = 0``,
constant gauges ``d = q = 0``.

``m`` is the resolution exporters give such a value: counters and most
gauges count things and are whole numbers; memory is counted in pages
(``m = 1/4096``); seconds come in hundredths (CPU time, load averages) or
thousandths (clock readings). The division is exact or correctly rounded,
so a value is the double an exporter's decimal text parses to.

Families that describe state hold their value: kube-state-metrics gauges
(``*_info``, phases, specs, creation times), limits, capacities, sizes and
start times. Error and drop counters move rarely (a few hundredths of an
event per scrape). On a real scrape mix this leaves many constant series,
which is what makes Prometheus' chunks average 1 to 2 bytes per sample; the
``random`` mode is the opposite end, every value a fresh 64-bit pattern.
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


# Name endings and parts of gauge families whose value describes state or a
# limit: it stays put from scrape to scrape.
_STATIC_ENDINGS = (
    "_info", "_labels", "_annotations", "_created", "_owner", "_restart_policy", "_start_time",
    "_start_time_seconds", "_boot_time_seconds", "_max_fds", "_max_bytes", "_maximum", "_size_bytes",
    "_files", "_mtu_bytes", "_speed_bytes", "_up", "_carrier", "_sync_status", "_limit_bytes",
    "_capacity_bytes", "_inodes", "_inodes_total", "_threads_max", "_ordinal", "Hugepagesize_bytes",
)  # fmt: skip
_STATIC_PARTS = ("_spec_", "Total_bytes", "CommitLimit", "_generation")
# Counter families that move rarely: errors, drops and the like.
_IDLE_PARTS = ("err", "drop", "fifo", "compressed", "oom", "restarts", "pgmajfault", "throttled", "failcnt")


def _is_static(metric: Metric) -> bool:
    name = metric.name
    if metric.type is MetricType.COUNTER:
        return False
    if name.startswith("kube_") and not name.endswith("_renew_time"):
        return True  # kube-state-metrics reports objects' state, which rarely changes
    return name.endswith(_STATIC_ENDINGS) or any(part in name for part in _STATIC_PARTS)


def _resolution(metric: Metric) -> float:
    """``m``: values are whole multiples of ``1 / m``."""
    name = metric.name
    if "_seconds" in name or name.startswith("node_load"):
        is_clock = metric.type is MetricType.GAUGE and "_seconds" in name
        return 1000.0 if is_clock else 100.0
    if metric.type is MetricType.GAUGE and name.endswith("_bytes"):
        return 1.0 / 4096.0
    return 1.0


class _FormulaBlock(ValueBlock):
    __slots__ = ("_a", "_d", "_m", "_q", "_walk")

    def __init__(
        self, walk: list[float], a: list[float], d: list[float], q: list[float], m: list[float]
    ) -> None:
        self._walk = walk
        self._a, self._d, self._q, self._m = a, d, q, m

    def values(self, scrape: int) -> Sequence[float]:
        phase = scrape % _PERIOD
        ys = self._walk[phase : phase + len(self._a)]
        return [
            round((a + scrape * d + q * y) * m) / m
            for a, d, q, m, y in zip(self._a, self._d, self._q, self._m, ys, strict=True)
        ]


class RealisticValues(ValueModel):
    """Counters with plausible per-scrape increments, gauges wandering around a level or holding it.

    Magnitudes follow the metric name: ``*_bytes_total`` counters grow by
    1 kB to 10 MB per scrape, ``*_seconds_total`` by 0.01 to 3 s, error and
    drop counters by 0.01 to 0.1 events, others by 0.1 to 100; ``*_bytes``
    gauges sit between 1 MB and 10 GB, others between 1 and 1,000, each
    wandering by 2 to 20 % unless its family holds state.
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

    def parameters(self, ref: SeriesRef) -> tuple[float, float, float, float]:
        """``(a, d, q, m)`` of the series' formula ``round((a + scrape * d + q * y) * m) / m``."""
        bits = mix64(self.seed, ref.index, ref.generation)
        u1, u2 = (bits >> 32) / 2.0**32, (bits & 0xFFFFFFFF) / 2.0**32
        metric = ref.metric
        name = metric.name
        m = _resolution(metric)
        if metric.type is MetricType.COUNTER:
            if any(part in name for part in _IDLE_PARTS):
                increment = 10 ** (-2 + u1)
            elif name.endswith("_bytes_total"):
                increment = 10 ** (3 + 4 * u1)
            elif name.endswith(("_seconds_total", "_seconds_sum")):
                increment = 10 ** (-2 + 2.5 * u1)
            else:
                increment = 10 ** (-1 + 3 * u1)
            start = increment * 10 ** (2 + 3 * u2)  # some hours to days of history
            return start, increment, increment, m
        level = 10 ** (6 + 4 * u1) if name.endswith("_bytes") else 10 ** (3 * u1)
        wander = 0.0 if _is_static(metric) else level * (0.04 + 0.4 * u2)
        return level, 0.0, wander, m

    def is_constant(self, ref: SeriesRef) -> bool:
        """Whether the series holds one value at every scrape (a gauge of state)."""
        return ref.metric.type is MetricType.GAUGE and _is_static(ref.metric)

    def block(self, template: int, series: Sequence[SeriesRef]) -> ValueBlock:
        a, d, q, m = [], [], [], []
        for ref in series:
            a_, d_, q_, m_ = self.parameters(ref)
            a.append(a_)
            d.append(d_)
            q.append(q_)
            m.append(m_)
        return _FormulaBlock(self.walk, a, d, q, m)

    def value(self, template: int, position: int, ref: SeriesRef, scrape: int) -> float:
        a, d, q, m = self.parameters(ref)
        return round((a + scrape * d + q * self.walk[(scrape + position) % _PERIOD]) * m) / m


def value_model(mode: ValueMode, seed: int, max_series_per_request: int) -> ValueModel:
    """The value model of ``mode``."""
    if mode is ValueMode.RANDOM:
        return RandomValues(seed, max_series_per_request)
    return RealisticValues(seed, max_series_per_request)
