"""Registries and the collector contract.

A registry holds *collectors*: any object with a ``collect()`` method that
returns :class:`MetricFamily` objects (the :class:`Collector` protocol). The
metrics of :mod:`remote_storage.instrument.metrics` are collectors; so is any
object you write yourself::

    >>> from remote_storage.instrument import MetricFamily, Registry, Sample
    >>> class QueueDepth:
    ...     def collect(self):
    ...         yield MetricFamily("queue_depth", "gauge", "Items waiting.", samples=[
    ...             Sample("queue_depth", {"queue": "write"}, 3.0),
    ...         ])
    >>> registry = Registry()
    >>> registry.register(QueueDepth())
    >>> registry.get_sample_value("queue_depth", {"queue": "write"})
    3.0
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from remote_storage.instrument.samples import MetricFamily, Sample

__all__ = [
    "REGISTRY",
    "Collector",
    "CollectorRegistry",
    "DuplicateMetricName",
    "Registry",
]


class Collector(Protocol):
    """Anything a :class:`Registry` can collect from.

    ``collect()`` is called on every scrape and may be called from any thread.
    A collector may also define ``describe()``, returning families without
    samples, to declare its names at registration; a collector without
    ``describe()`` is collected once when registered, so that name clashes
    are found then. Return an empty list from ``describe()`` to skip that
    check.
    """

    def collect(self) -> Iterable[MetricFamily]: ...


class DuplicateMetricName(ValueError):
    """A collector was registered whose sample names are already taken in the registry."""

    def __init__(self, names: Iterable[str], collector: Collector) -> None:
        self.names = tuple(sorted(names))
        self.collector = collector
        super().__init__(
            f"metric name(s) {', '.join(map(repr, self.names))} already registered in this registry; "
            "give the metric another name, unregister the old collector first, or use a separate Registry"
        )


# Sample names a family of each type may expose (OpenMetrics included), so two
# families whose output would collide are refused at registration.
_TYPE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


def _names_of(family: MetricFamily) -> tuple[str, ...]:
    return (family.name, *(family.name + suffix for suffix in _TYPE_SUFFIXES.get(family.type, ())))


class Registry:
    """A set of collectors, collected in the order they were registered.

    Registering and unregistering are thread-safe, and may happen while
    another thread collects.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Keyed by identity so that collectors need not be hashable.
        self._collectors: dict[int, tuple[Collector, tuple[str, ...]]] = {}
        self._names: set[str] = set()

    def register(self, collector: Collector) -> None:
        """Add ``collector``; raise :class:`DuplicateMetricName` if any of its names is taken."""
        names = tuple(name for family in self._described(collector) for name in _names_of(family))
        with self._lock:
            if id(collector) in self._collectors:
                raise ValueError(f"collector {collector!r} is already registered in this registry")
            taken = self._names.intersection(names)
            if taken:
                raise DuplicateMetricName(taken, collector)
            self._collectors[id(collector)] = (collector, names)
            self._names.update(names)

    def _described(self, collector: Collector) -> Iterable[MetricFamily]:
        """The families whose names ``collector`` takes: its ``describe()``, else one collection."""
        describe = getattr(collector, "describe", None)
        families: Iterable[MetricFamily] = describe() if callable(describe) else collector.collect()
        return families

    def unregister(self, collector: Collector) -> None:
        """Remove ``collector``, freeing its names; raise ``KeyError`` if it is not registered."""
        with self._lock:
            try:
                _, names = self._collectors.pop(id(collector))
            except KeyError:
                raise KeyError(f"collector {collector!r} is not registered in this registry") from None
            self._names.difference_update(names)

    def collect(self) -> Iterator[MetricFamily]:
        """Yield the families of every registered collector, in registration order."""
        with self._lock:
            collectors = [collector for collector, _ in self._collectors.values()]
        for collector in collectors:
            yield from collector.collect()

    def get_sample_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """Return the value of the sample with this exact name and label set, or None.

        Meant for tests: it collects everything on every call.
        """
        wanted = dict(labels) if labels is not None else {}
        for family in self.collect():
            for sample in family.samples:
                if sample.name == name and dict(sample.labels) == wanted:
                    return sample.value
        return None


class CollectorRegistry(Registry):
    """:class:`Registry` under ``prometheus_client``'s name, with its constructor.

    ``auto_describe=False`` (the default, as there) registers a collector
    that has no ``describe()`` without collecting it, so its names are not
    checked for clashes; ``True`` collects it once, as :class:`Registry`
    always does. ``target_info`` labels become the ``target_info`` series
    (the OpenMetrics info metric about the whole target).
    """

    def __init__(self, auto_describe: bool = False, target_info: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.auto_describe = auto_describe
        if target_info:
            self.register(_TargetInfo(dict(target_info)))

    def _described(self, collector: Collector) -> Iterable[MetricFamily]:
        if self.auto_describe or callable(getattr(collector, "describe", None)):
            return super()._described(collector)
        return ()


class _TargetInfo:
    def __init__(self, labels: dict[str, str]) -> None:
        sample = Sample("target_info", labels, 1.0)
        self.family = MetricFamily("target", "info", "Target metadata", samples=[sample])

    def collect(self) -> Iterable[MetricFamily]:
        return [self.family]


REGISTRY = Registry()
"""The default registry: metrics register here unless given another ``registry``."""
