"""Local metrics: one thread's private tally in front of a shared counter or histogram.

A shared metric takes a lock on every update so that any thread may use it.
A thread that updates a metric in a tight loop can keep a *local* instead:
its updates are plain attribute arithmetic, without a lock, and it moves
what it gathered into the shared metric when it is flushed::

    >>> from remote_storage.instrument import Counter, Registry
    >>> registry = Registry()
    >>> items = Counter("items_processed", "Items processed.", registry=registry)
    >>> with items.local() as local:
    ...     for _ in range(1000):
    ...         local.inc()
    >>> registry.get_sample_value("items_processed_total")
    1000.0

A local is flushed by :meth:`~LocalCounter.flush`, when its ``with`` block
ends, when it is garbage collected, and periodically (``interval`` seconds,
default 1; ``None`` turns periodic flushing off):

* a :class:`LocalCounter` is flushed by a background thread, so what it
  holds reaches the shared counter within about ``interval`` seconds even
  when its thread stops updating it. This is safe without a lock on the
  update path because the local only ever adds to its running total and
  the flush adds the difference to what it flushed before.
* a :class:`LocalHistogram` changes several values per observation, which
  another thread cannot read consistently without a lock, so its own thread
  flushes it: the background thread only marks it due, and the next
  ``observe()`` flushes. Call ``flush()`` when the thread goes idle.

**A local belongs to one thread.** Create one per thread (for instance in
:class:`threading.local`, or at the top of a worker's loop) and never share
it: two threads updating one local lose updates. The shared metric it
flushes into stays exact, whatever the number of locals.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from types import TracebackType
from typing import Protocol, Self

from remote_storage.instrument.timers import Timer

__all__ = ["DEFAULT_FLUSH_INTERVAL", "LocalCounter", "LocalHistogram", "LocalIntCounter"]

DEFAULT_FLUSH_INTERVAL = 1.0
"""Seconds between periodic flushes of a local, unless another ``interval`` is given."""

_log = logging.getLogger(__name__)
# Longest the flusher thread sleeps, so that a new local with a short interval is seen soon.
_MAX_TICK = 1.0
_MIN_TICK = 0.005


class _Counter(Protocol):
    def inc(self, amount: float = 1, /) -> None: ...

    def _check_updatable(self) -> None: ...


class _Histogram(Protocol):
    _upper_bounds: tuple[float, ...]

    def _merge(self, counts: list[int], total: float) -> None: ...

    def _check_updatable(self) -> None: ...


class _Local:
    """What every local shares: flushing at the end of a ``with`` block, when collected, and
    periodically (through :data:`_FLUSHER`, which calls ``_periodic_flush``)."""

    __slots__ = ("__weakref__", "_interval", "_next_flush")
    _interval: float
    _next_flush: float

    def flush(self) -> None:
        raise NotImplementedError

    def _periodic_flush(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.flush()

    def __del__(self) -> None:
        self.flush()


class LocalCounter(_Local):
    """A thread's private tally in front of a counter; get one from ``counter.local()``.

    ``inc()`` does not check the sign of ``amount``, to keep it as cheap as
    an attribute update; a negative total since the last flush makes that
    flush raise ``ValueError`` (and drops it).
    """

    __slots__ = ("_flush_lock", "_flushed", "_target", "_value")
    _zero: float = 0.0

    def __init__(self, target: _Counter, interval: float | None = DEFAULT_FLUSH_INTERVAL) -> None:
        self._target = target
        # Only this local's thread writes _value; only flush() writes _flushed.
        self._value: float = self._zero
        self._flushed: float = self._zero
        self._flush_lock = threading.Lock()
        # Checked once every slot is set: __del__ runs even when __init__ raises.
        target._check_updatable()
        _register(self, interval)

    # A float default keeps the addition float + float, which the interpreter does fastest.
    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1) to the local tally."""
        self._value += amount

    @property
    def pending(self) -> float:
        """What was added since the last flush."""
        return self._value - self._flushed

    def flush(self) -> None:
        """Add what was gathered since the last flush to the shared counter."""
        with self._flush_lock:
            total = self._value
            delta = total - self._flushed
            self._flushed = total
            if delta < 0:
                raise ValueError(
                    f"a local counter was given negative amounts totalling {delta!r} since its last "
                    "flush, which was dropped; counters only go up, use a Gauge for a value that goes down"
                )
            if delta:
                self._target.inc(delta)

    def _periodic_flush(self) -> None:
        self.flush()


class LocalIntCounter(LocalCounter):
    """A thread's private tally in front of an integer counter; get one from ``int_counter.local()``."""

    __slots__ = ()
    _zero = 0

    def inc(self, amount: int = 1) -> None:  # type: ignore[override]
        """Add ``amount`` (default 1) to the local tally."""
        self._value += amount


class LocalHistogram(_Local):
    """A thread's private buckets in front of a histogram; get one from ``histogram.local()``."""

    __slots__ = ("_counts", "_due", "_sum", "_target", "_upper_bounds")

    def __init__(self, target: _Histogram, interval: float | None = DEFAULT_FLUSH_INTERVAL) -> None:
        self._target = target
        self._upper_bounds = target._upper_bounds
        self._counts = [0] * len(self._upper_bounds)
        self._sum = 0.0
        self._due = False
        # Checked once every slot is set: __del__ runs even when __init__ raises.
        target._check_updatable()
        _register(self, interval)

    def observe(self, amount: float) -> None:
        """Record one observation of ``amount``; flushes first if the interval has passed."""
        # NaN compares false with every bound; Prometheus counts it in the +Inf bucket.
        self._counts[bisect_left(self._upper_bounds, amount) if amount == amount else -1] += 1
        self._sum += amount
        if self._due:
            self.flush()

    def time(self) -> Timer:
        """Time a block or every call of a function into this local (see :class:`Timer`)."""
        return Timer(self.observe)

    @property
    def pending(self) -> int:
        """How many observations were recorded since the last flush."""
        return sum(self._counts)

    def flush(self) -> None:
        """Move the observations recorded since the last flush into the shared histogram."""
        self._due = False
        counts = self._counts
        if any(counts):
            self._counts = [0] * len(counts)
            total, self._sum = self._sum, 0.0
            self._target._merge(counts, total)

    def _periodic_flush(self) -> None:
        self._due = True


class _Flusher:
    """One daemon thread that flushes local counters and marks local histograms due.

    It holds its locals weakly: a local that is no longer used is collected
    (and flushed by ``__del__``) as usual.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locals: weakref.WeakSet[_Local] = weakref.WeakSet()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, local: _Local) -> None:
        with self._lock:
            self._locals.add(local)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="instrument-local-flusher", daemon=True
                )
                self._thread.start()
        self._wakeup.set()

    def _run(self) -> None:
        while True:
            self._wakeup.wait(self._flush_due())
            self._wakeup.clear()

    def _flush_due(self) -> float:
        """Flush the locals whose time has come; return how long to sleep."""
        with self._lock:
            due = list(self._locals)
        now = time.monotonic()
        sleep = _MAX_TICK
        for local in due:
            if now >= local._next_flush:
                local._next_flush = now + local._interval
                try:
                    local._periodic_flush()
                except Exception:
                    _log.exception("periodic flush of %r failed", local)
            sleep = min(sleep, local._next_flush - now)
        return max(sleep, _MIN_TICK)

    def _after_fork(self) -> None:
        # Threads do not survive fork(); the child starts its own on first use.
        self._lock = threading.Lock()
        self._thread = None
        self._locals = weakref.WeakSet()


_FLUSHER = _Flusher()
os.register_at_fork(after_in_child=_FLUSHER._after_fork)


def _register(local: _Local, interval: float | None) -> None:
    if interval is None:
        return
    if not interval > 0:
        raise ValueError(f"a local's flush interval must be a positive number of seconds, not {interval!r}")
    local._interval = interval
    local._next_flush = time.monotonic() + interval
    _FLUSHER.add(local)
