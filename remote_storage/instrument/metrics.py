"""Counter and Gauge (float and integer), alone or as families of labelled children.

A metric defined without label names is updated directly; one defined with
label names is a family, and each combination of label values is a child
you get from ``labels()``::

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
to ``labels()``; label values are converted with ``str()``. Children are
cached, so keep the child when the label values are known up front (or bind
them all at once with :func:`~remote_storage.instrument.static.bind`).

:class:`Counter` and :class:`Gauge` hold floats; :class:`IntCounter` and
:class:`IntGauge` hold Python integers, which stay exact however large they
grow (past 2**53 a float cannot hold every integer) and refuse non-integer
amounts. Every value is exposed as a float64, as Prometheus stores it.
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Callable, Iterable
from typing import ClassVar, TypeVar, cast

from remote_storage.instrument import family
from remote_storage.instrument.family import Child, Family, RefusingLock
from remote_storage.instrument.local import (
    DEFAULT_FLUSH_INTERVAL,
    LocalCounter,
    LocalIntCounter,
)
from remote_storage.instrument.samples import NO_LABELS, LabelSet, Sample
from remote_storage.instrument.timers import CountExceptions, InProgress, Timer

__all__ = [
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "IntCounter",
    "IntCounterChild",
    "IntGauge",
    "IntGaugeChild",
]


def _negative_increment(amount: object) -> ValueError:
    return ValueError(
        f"counters only go up, but inc() got {amount!r}; use a Gauge for a value that can go down "
        "(or is not a number)"
    )


def _as_int(amount: object) -> int:
    """``amount`` as an int if it is an integer of any integer type; TypeError otherwise."""
    try:
        return operator.index(amount)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"integer metrics take integers, but got {amount!r} of type {type(amount).__name__}; "
            "use Counter or Gauge for fractional values"
        ) from None


# -- counters ---------------------------------------------------------------------------------------


class _CounterValue(Child):
    """What float and integer counters share.

    The most common update, ``inc()`` by one, takes no lock: it advances an
    :func:`itertools.count`, whose ``__next__`` runs in C without releasing
    the GIL and so never loses an increment (the standard library counts
    threads this way). Other amounts are added to ``_value`` under the lock.
    Reading the total advances the count once more, so reads are counted
    (``_reads``) and subtracted.
    """

    __slots__ = ("_reads", "_tick", "_ticks", "_value")
    _zero: ClassVar[float] = 0.0
    _local_type: ClassVar[type[LocalCounter]] = LocalCounter

    def __init__(self, labels: LabelSet = NO_LABELS) -> None:
        super().__init__(labels)
        self._value = self._zero
        self._ticks = itertools.count()
        self._tick: Callable[[], int] = self._ticks.__next__
        self._reads = 0

    def inc(self, amount: float = 1) -> None:
        raise NotImplementedError

    def _total(self) -> float:
        lock = self._lock
        lock.acquire()
        try:
            ones = self._tick() - self._reads
            self._reads += 1
            return self._value + ones
        finally:
            lock.release()

    def reset(self) -> None:
        """Start again from zero, as after a restart (OpenMetrics ``_created`` moves to now).

        An increment racing with the reset in another thread may land on
        either side of it.
        """
        lock = self._lock
        lock.acquire()
        try:
            self._value = self._zero
            self._ticks = itertools.count()
            self._tick = self._ticks.__next__
            self._reads = 0
            self._created = family.wall_clock()
        finally:
            lock.release()

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> CountExceptions:
        """Count exceptions of type ``exception`` leaving a block or a call (see :class:`CountExceptions`)."""
        self._check_updatable()
        return CountExceptions(self.inc, exception)

    def local(self, interval: float | None = DEFAULT_FLUSH_INTERVAL) -> LocalCounter:
        """A lock-free tally for one thread that flushes into this counter (see :class:`LocalCounter`)."""
        return self._local_type(self, interval)


class CounterChild(_CounterValue):
    """A float that only goes up: an unlabelled :class:`Counter` or one child of a family."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (default 1); a negative amount raises ``ValueError``."""
        if amount == 1:
            self._tick()
            return
        if not amount >= 0:  # negative or NaN
            raise _negative_increment(amount)
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()


class IntCounterChild(_CounterValue):
    """An integer that only goes up: an unlabelled :class:`IntCounter` or one child of a family."""

    __slots__ = ()
    _zero = 0
    _local_type = LocalIntCounter

    def inc(self, amount: int = 1) -> None:  # type: ignore[override]
        """Add ``amount`` (default 1); a negative or non-integer amount raises."""
        if amount.__class__ is not int or amount < 0:
            amount = _as_int(amount)
            if amount < 0:
                raise _negative_increment(amount)
        if amount == 1:
            self._tick()
            return
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()


CounterT = TypeVar("CounterT", bound=_CounterValue)


class _CounterFamily(Family[CounterT]):
    """What Counter and IntCounter families share."""

    _type = "counter"
    _suffix = "_total"

    def _refuse_updates(self, lock: RefusingLock) -> None:
        super()._refuse_updates(lock)
        # The lock-free path must refuse too.
        cast(_CounterValue, self)._tick = lock.acquire

    def _collect_samples(self, children: list[CounterT], samples: list[Sample]) -> None:
        append = samples.append
        total = self._name + "_total"
        for child in children:
            append(Sample(total, child._labels, child._total(), child._created))


class Counter(_CounterFamily[CounterChild], CounterChild):
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

    def _init_value(self) -> None:
        CounterChild.__init__(self, self._const_labels)

    def _new_child(self, labels: LabelSet) -> CounterChild:
        return CounterChild(labels)


class IntCounter(_CounterFamily[IntCounterChild], IntCounterChild):
    """A counter of whole numbers, exact at any size; otherwise like :class:`Counter`.

    Past 2**53 a float cannot hold every integer, so a float counter drops
    part of what is added; an integer counter does not, and refuses
    fractional amounts::

        >>> from remote_storage.instrument import IntCounter, Registry
        >>> registry = Registry()
        >>> sent = IntCounter("sent_bytes", "Bytes sent.", registry=registry)
        >>> sent.inc(1500)
        >>> sent.inc(0.5)
        Traceback (most recent call last):
        ...
        TypeError: integer metrics take integers, but got 0.5 of type float; use Counter or Gauge ...
    """

    def _init_value(self) -> None:
        IntCounterChild.__init__(self, self._const_labels)

    def _new_child(self, labels: LabelSet) -> IntCounterChild:
        return IntCounterChild(labels)


# -- gauges -----------------------------------------------------------------------------------------


class _GaugeValue(Child):
    """What float and integer gauges share."""

    __slots__ = ("_function", "_value")
    _zero: ClassVar[float] = 0.0

    def __init__(self, labels: LabelSet = NO_LABELS) -> None:
        super().__init__(labels)
        self._value = self._zero
        self._function: Callable[[], float] | None = None

    def inc(self, amount: float = 1) -> None:
        raise NotImplementedError

    def dec(self, amount: float = 1) -> None:
        raise NotImplementedError

    def set_function(self, function: Callable[[], float] | None) -> None:
        """Take the value from ``function()`` at every collection instead (None to stop).

        ``function`` runs in the collecting thread, on every scrape: keep it
        fast and thread-safe.
        """
        self._check_updatable()
        self._function = function

    def track_inprogress(self) -> InProgress:
        """Add one while a block or a call runs (see :class:`InProgress`)."""
        self._check_updatable()
        return InProgress(self.inc, self.dec)


class GaugeChild(_GaugeValue):
    """A float that goes up and down: an unlabelled :class:`Gauge` or one child of a family."""

    __slots__ = ()

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

    def time(self) -> Timer:
        """Set the gauge to the duration of a block or of each call (see :class:`Timer`)."""
        self._check_updatable()
        return Timer(self.set)


class IntGaugeChild(_GaugeValue):
    """An integer that goes up and down: an unlabelled :class:`IntGauge` or one child of a family."""

    __slots__ = ()
    _zero = 0

    def inc(self, amount: int = 1) -> None:  # type: ignore[override]
        """Add ``amount`` (default 1); a non-integer amount raises ``TypeError``."""
        if amount.__class__ is not int:
            amount = _as_int(amount)
        lock = self._lock
        lock.acquire()
        try:
            self._value += amount
        finally:
            lock.release()

    def dec(self, amount: int = 1) -> None:  # type: ignore[override]
        """Subtract ``amount`` (default 1); a non-integer amount raises ``TypeError``."""
        if amount.__class__ is not int:
            amount = _as_int(amount)
        lock = self._lock
        lock.acquire()
        try:
            self._value -= amount
        finally:
            lock.release()

    def set(self, value: int) -> None:
        """Set the gauge to ``value``; a non-integer value raises ``TypeError``."""
        if value.__class__ is not int:
            value = _as_int(value)
        lock = self._lock
        lock.acquire()
        try:
            self._value = value
        finally:
            lock.release()


def _gauge_samples(name: str, children: Iterable[_GaugeValue], samples: list[Sample]) -> None:
    append = samples.append
    for child in children:
        function = child._function
        append(Sample(name, child._labels, child._value if function is None else function()))


class Gauge(Family[GaugeChild], GaugeChild):
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
        GaugeChild.__init__(self, self._const_labels)

    def _new_child(self, labels: LabelSet) -> GaugeChild:
        return GaugeChild(labels)

    def _collect_samples(self, children: list[GaugeChild], samples: list[Sample]) -> None:
        _gauge_samples(self._name, children, samples)


class IntGauge(Family[IntGaugeChild], IntGaugeChild):
    """A gauge of whole numbers, such as items in a queue; otherwise like :class:`Gauge`."""

    _type = "gauge"

    def _init_value(self) -> None:
        IntGaugeChild.__init__(self, self._const_labels)

    def _new_child(self, labels: LabelSet) -> IntGaugeChild:
        return IntGaugeChild(labels)

    def _collect_samples(self, children: list[IntGaugeChild], samples: list[Sample]) -> None:
        _gauge_samples(self._name, children, samples)
