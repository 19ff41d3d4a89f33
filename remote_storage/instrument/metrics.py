"""Counter, Gauge and Histogram, alone or as families of labelled children.

A metric defined without label names is updated directly; one defined with
label names is a family, and each combination of label values is a child
you get from :meth:`labels`::

    >>> from remote_storage.instrument import Counter, Registry
    >>> registry = Registry()
    >>> jobs = Counter("jobs", "Jobs done.", registry=registry)
    >>> jobs.inc()
    >>> requests = Counter("requests", "Requests answered.", ["method", "code"], registry=registry)
    >>> requests.labels("get", "200").inc()
    >>> requests.labels(method="get", code=200).inc(2)
    >>> registry.get_sample_value("requests_total", {"method": "get", "code": "200"})
    3.0

Label names are fixed when the family is defined and checked on every call
to :meth:`labels`; label values are converted with ``str()``. Children are
cached, so keep the child when the label values are known up front.

Every update takes the lock of the value it changes, so totals are exact
whatever the number of threads. The updating methods are kept short because
they run on request paths: values live in ``__slots__``, the lock is bound
once per value, and nothing on the update path checks whether the metric is
labelled (see :class:`_RefusingLock`).
"""

from __future__ import annotations

import math
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise
from typing import ClassVar, Generic, NoReturn, Protocol, TypeVar, cast

from remote_storage.instrument.exposition import format_float
from remote_storage.instrument.registry import REGISTRY, MetricFamily, MetricType, Registry, Sample

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "InvalidBuckets",
    "InvalidLabelName",
    "InvalidMetricName",
    "LabelValuesMismatch",
    "LabelValuesRequired",
]

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

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class InvalidMetricName(ValueError):
    """A metric was defined with a name Prometheus does not accept."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"invalid metric name {name!r}: a metric name (with namespace, subsystem and unit "
            f"joined by '_') must match {_METRIC_NAME.pattern}"
        )


class InvalidLabelName(ValueError):
    """A metric was defined with a label name it may not have."""

    def __init__(self, metric: str, label: str, reason: str) -> None:
        self.metric = metric
        self.label = label
        super().__init__(f"metric {metric!r} cannot have the label name {label!r}: {reason}")


class InvalidBuckets(ValueError):
    """A histogram was defined with bucket bounds that are not strictly increasing numbers."""

    def __init__(self, metric: str, buckets: tuple[float, ...]) -> None:
        self.metric = metric
        self.buckets = buckets
        super().__init__(
            f"histogram {metric!r} got buckets {buckets!r}: bucket upper bounds must be numbers "
            "in strictly increasing order, without duplicates or NaN (+Inf is added when missing)"
        )


class LabelValuesMismatch(ValueError):
    """``labels()`` or ``remove()`` got label values that do not fit the family's label names."""

    def __init__(
        self, metric: str, labelnames: tuple[str, ...], values: tuple[object, ...], names: tuple[str, ...]
    ) -> None:
        self.metric = metric
        self.labelnames = labelnames
        self.values = values
        self.names = names
        if not labelnames:
            message = f"metric {metric!r} has no label names; update it directly, without labels()"
        else:
            if values and names:
                given = f"values {values!r} and names {names!r}; pass values either by position or by name"
            elif names:
                given = f"label names {names!r}"
            else:
                given = f"{len(values)} value(s) {values!r}"
            message = f"metric {metric!r} has label names {labelnames!r}, but got {given}"
        super().__init__(message)


class LabelValuesRequired(ValueError):
    """A family with label names was updated itself instead of through one of its children."""

    def __init__(self, metric: str, labelnames: tuple[str, ...]) -> None:
        self.metric = metric
        self.labelnames = labelnames
        example = ", ".join(f"{name}=..." for name in labelnames)
        super().__init__(
            f"metric {metric!r} has label names {labelnames!r}: update one of its children, "
            f"{metric}.labels({example}), not the family itself"
        )


class _Lock(Protocol):
    def acquire(self) -> object: ...

    def release(self) -> None: ...


class CounterChild:
    """A value that only goes up: an unlabelled :class:`Counter` or one child of a family."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock: _Lock = threading.Lock()
        self._value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1); a negative amount raises ``ValueError``."""
        if amount < 0:
            raise ValueError(
                f"counters only go up, but inc() got {amount!r}; use a Gauge for a value that can go down"
            )
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()


class GaugeChild:
    """A value that goes up and down: an unlabelled :class:`Gauge` or one child of a family."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock: _Lock = threading.Lock()
        self._value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1)."""
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()

    def dec(self, amount: float = 1) -> None:
        """Subtract ``amount`` (default 1)."""
        lock = self._lock
        lock.acquire()
        try:
            self._value -= amount
        finally:
            lock.release()

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        value = float(value)
        lock = self._lock
        lock.acquire()
        try:
            self._value = value
        finally:
            lock.release()

    def set_to_current_time(self) -> None:
        """Set the gauge to the current Unix time in seconds."""
        self.set(time.time())


class HistogramChild:
    """Observations counted in buckets: an unlabelled :class:`Histogram` or one child of a family."""

    __slots__ = ("_counts", "_lock", "_sum", "_upper_bounds")

    def __init__(self, upper_bounds: tuple[float, ...]) -> None:
        self._lock: _Lock = threading.Lock()
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

    def _snapshot(self) -> tuple[list[int], float]:
        lock = self._lock
        lock.acquire()
        try:
            return list(self._counts), self._sum
        finally:
            lock.release()


class _RefusingLock:
    """Stands in for the lock of a labelled family's own, unused value.

    A family is also a child (an unlabelled Counter is updated directly), so
    a labelled family has a value of its own that must never change. Every
    updating method takes its value's lock first; giving the family this lock
    makes updating it raise :class:`LabelValuesRequired`, without a check on
    the update path of every other value.
    """

    __slots__ = ("_labelnames", "_metric")

    def __init__(self, metric: str, labelnames: tuple[str, ...]) -> None:
        self._metric = metric
        self._labelnames = labelnames

    def acquire(self) -> NoReturn:
        raise LabelValuesRequired(self._metric, self._labelnames)

    def release(self) -> None:
        pass


_ChildT = TypeVar("_ChildT")


class _Family(Generic[_ChildT]):
    """What every metric type shares: its definition, its children and its registration.

    A concrete metric subclasses this and its child class, so that without
    label names it is updated directly. This class has no ``__slots__``
    because a class cannot have two bases that both add slots; families are
    few, and the values they and their children update are slotted.
    """

    _type: ClassVar[MetricType]
    _reserved_labelnames: ClassVar[Mapping[str, str]] = {}
    _lock: _Lock

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: Registry | None = REGISTRY,
        const_labels: Mapping[str, object] | None = None,
    ) -> None:
        self._name = _full_name(self._type, name, namespace, subsystem, unit)
        self._help = documentation
        self._unit = unit
        if isinstance(labelnames, str):
            raise TypeError(
                f"labelnames of {self._name!r} must be a sequence of names, not the string {labelnames!r}"
            )
        self._labelnames = tuple(labelnames)
        self._const_labels = {label: str(value) for label, value in (const_labels or {}).items()}
        self._check_label_names((*self._const_labels, *self._labelnames))
        self._children: dict[tuple[str, ...], _ChildT] = {}
        self._children_lock = threading.Lock()
        self._init_value()
        if self._labelnames:
            self._lock = _RefusingLock(self._name, self._labelnames)
        if registry is not None:
            registry.register(self)

    def _init_value(self) -> None:
        """Initialise the family's own value (call the child class's ``__init__``)."""
        raise NotImplementedError

    def _new_child(self) -> _ChildT:
        raise NotImplementedError

    def _samples(self, child: _ChildT, labels: dict[str, str]) -> Iterator[Sample]:
        raise NotImplementedError

    def _check_label_names(self, labelnames: tuple[str, ...]) -> None:
        seen: set[str] = set()
        for label in labelnames:
            if not _LABEL_NAME.fullmatch(label):
                raise InvalidLabelName(self._name, label, f"label names must match {_LABEL_NAME.pattern}")
            if label.startswith("__"):
                raise InvalidLabelName(
                    self._name, label, "names starting with '__' are reserved for Prometheus"
                )
            if label in self._reserved_labelnames:
                raise InvalidLabelName(self._name, label, self._reserved_labelnames[label])
            if label in seen:
                raise InvalidLabelName(
                    self._name, label, "it is given twice (label names and const_labels included)"
                )
            seen.add(label)

    def labels(self, *values: object, **named: object) -> _ChildT:
        """Return the child for these label values, creating it on first use.

        Give the values in the order of the label names, or all by name.
        A wrong number of values or wrong names raise
        :class:`LabelValuesMismatch`.
        """
        if named:
            values = self._values_from_names(values, named)
        try:
            # Label values that are not str miss here and are converted below.
            child = self._children.get(values)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value, which str() will make usable
            child = None
        if child is None:
            key = self._key(values)
            with self._children_lock:
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = self._new_child()
        return child

    def remove(self, *values: object, **named: object) -> None:
        """Forget the child for these label values, if there is one."""
        if named:
            values = self._values_from_names(values, named)
        key = self._key(values)
        with self._children_lock:
            self._children.pop(key, None)

    def clear(self) -> None:
        """Forget every child."""
        with self._children_lock:
            self._children.clear()

    def _values_from_names(self, values: tuple[object, ...], named: dict[str, object]) -> tuple[object, ...]:
        if values or len(named) != len(self._labelnames):
            raise self._mismatch(values, tuple(named))
        try:
            return tuple([named[label] for label in self._labelnames])
        except KeyError:
            raise self._mismatch(values, tuple(named)) from None

    def _key(self, values: tuple[object, ...]) -> tuple[str, ...]:
        if not self._labelnames or len(values) != len(self._labelnames):
            raise self._mismatch(values, ())
        return tuple(map(str, values))

    def _mismatch(self, values: tuple[object, ...], names: tuple[str, ...]) -> LabelValuesMismatch:
        return LabelValuesMismatch(self._name, self._labelnames, values, names)

    def describe(self) -> list[MetricFamily]:
        """The family without samples, for the registry to check names at registration."""
        return [MetricFamily(self._name, self._type, self._help, self._unit)]

    def collect(self) -> list[MetricFamily]:
        """The family with one set of samples per child (or of the metric itself, if unlabelled)."""
        family = MetricFamily(self._name, self._type, self._help, self._unit)
        if self._labelnames:
            with self._children_lock:
                children = list(self._children.items())
        else:
            # An unlabelled metric is its own only child.
            children = [((), cast(_ChildT, self))]
        for key, child in children:
            labels = {**self._const_labels, **dict(zip(self._labelnames, key, strict=True))}
            family.samples.extend(self._samples(child, labels))
        return [family]


class Counter(_Family[CounterChild], CounterChild):
    """A counter: a value that only goes up, such as requests served.

    Exposed as ``<name>_total``; a name given with a ``_total`` suffix loses
    it, as in other clients::

        >>> from remote_storage.instrument import Counter, Registry, generate_latest
        >>> registry = Registry()
        >>> written = Counter("written_samples_total", "Samples written.", ["backend"], registry=registry)
        >>> written.labels("memory").inc(100)
        >>> print(generate_latest(registry).decode(), end="")
        # HELP written_samples_total Samples written.
        # TYPE written_samples_total counter
        written_samples_total{backend="memory"} 100.0
    """

    _type = "counter"

    def _init_value(self) -> None:
        CounterChild.__init__(self)

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def _samples(self, child: CounterChild, labels: dict[str, str]) -> Iterator[Sample]:
        yield Sample(self._name + "_total", labels, child._value)


class Gauge(_Family[GaugeChild], GaugeChild):
    """A gauge: a value that goes up and down, such as requests in flight::

    >>> from remote_storage.instrument import Gauge, Registry
    >>> registry = Registry()
    >>> in_flight = Gauge("in_flight_requests", "Requests being answered.", registry=registry)
    >>> in_flight.inc()
    >>> in_flight.dec()
    >>> in_flight.set(3)
    >>> registry.get_sample_value("in_flight_requests")
    3.0
    """

    _type = "gauge"

    def _init_value(self) -> None:
        GaugeChild.__init__(self)

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def _samples(self, child: GaugeChild, labels: dict[str, str]) -> Iterator[Sample]:
        yield Sample(self._name, labels, child._value)


class Histogram(_Family[HistogramChild], HistogramChild):
    """A histogram: observations, such as request durations, counted in buckets.

    Exposed as cumulative ``<name>_bucket{le="..."}`` samples (``+Inf``
    always included), ``<name>_sum`` and ``<name>_count``::

        >>> from remote_storage.instrument import Histogram, Registry
        >>> registry = Registry()
        >>> latency = Histogram("latency_seconds", "Latency.", buckets=[0.1, 1.0], registry=registry)
        >>> latency.observe(0.05)
        >>> latency.observe(0.5)
        >>> registry.get_sample_value("latency_seconds_bucket", {"le": "1.0"})
        2.0
    """

    _type = "histogram"
    _reserved_labelnames: ClassVar[Mapping[str, str]] = {"le": "histograms use it for the bucket bounds"}

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: Registry | None = REGISTRY,
        const_labels: Mapping[str, object] | None = None,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        self._upper_bounds = _upper_bounds(name, buckets)
        self._le_values = tuple(map(format_float, self._upper_bounds))
        super().__init__(
            name,
            documentation,
            labelnames,
            namespace=namespace,
            subsystem=subsystem,
            unit=unit,
            registry=registry,
            const_labels=const_labels,
        )

    def _init_value(self) -> None:
        HistogramChild.__init__(self, self._upper_bounds)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._upper_bounds)

    def _samples(self, child: HistogramChild, labels: dict[str, str]) -> Iterator[Sample]:
        counts, total = child._snapshot()
        cumulative = 0
        for le, count in zip(self._le_values, counts, strict=True):
            cumulative += count
            yield Sample(self._name + "_bucket", {**labels, "le": le}, float(cumulative))
        yield Sample(self._name + "_count", labels, float(cumulative))
        yield Sample(self._name + "_sum", labels, total)


def _full_name(metric_type: MetricType, name: str, namespace: str, subsystem: str, unit: str) -> str:
    """Join namespace, subsystem, name and unit as other clients do, and validate the result."""
    if not name:
        raise InvalidMetricName(name)
    full_name = "_".join(part for part in (namespace, subsystem, name) if part)
    if metric_type == "counter" and full_name.endswith("_total"):
        full_name = full_name[: -len("_total")]
    if unit and not full_name.endswith("_" + unit):
        full_name += "_" + unit
    if not _METRIC_NAME.fullmatch(full_name):
        raise InvalidMetricName(full_name)
    return full_name


def _upper_bounds(metric: str, buckets: Iterable[float]) -> tuple[float, ...]:
    bounds = tuple(map(float, buckets))
    if any(math.isnan(bound) for bound in bounds) or any(a >= b for a, b in pairwise(bounds)):
        raise InvalidBuckets(metric, bounds)
    if not bounds or bounds[-1] != math.inf:
        bounds += (math.inf,)
    return bounds
