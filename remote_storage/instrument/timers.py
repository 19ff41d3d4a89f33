"""Timing code into a metric, tracking calls in progress, counting exceptions.

:class:`Timer` is what ``Histogram.time()``, ``Summary.time()`` and
``Gauge.time()`` return; :class:`InProgress` is what
``Gauge.track_inprogress()`` returns; :class:`CountExceptions` is what
``Counter.count_exceptions()`` returns. Each works three ways, on plain and
on ``async`` functions alike::

    >>> from remote_storage.instrument import Gauge, Histogram, Registry
    >>> registry = Registry()
    >>> latency = Histogram("job_duration_seconds", "Job duration.", registry=registry)
    >>> with latency.time():                 # a block
    ...     pass
    >>> @latency.time()                      # every call of a function
    ... def job():
    ...     pass
    >>> job()
    >>> @latency.time()                      # every await of a coroutine function
    ... async def async_job():
    ...     pass
    >>> registry.get_sample_value("job_duration_seconds_count")
    2.0

Durations come from :func:`time.perf_counter`, so they are not affected by
changes of the wall clock. A decorated function keeps its name, docstring
and signature (:func:`functools.wraps`); a call that raises is timed too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar, cast

__all__ = ["CountExceptions", "InProgress", "Timer"]

F = TypeVar("F", bound=Callable[..., Any])


def _decorate(func: F, manager: Callable[[], AbstractContextManager[object]]) -> F:
    """Wrap ``func`` so that every call runs inside a ``with manager():`` block.

    Every call gets the manager ``manager()`` returns: a stateful one (a
    :class:`Timer`) is made per call, so one decorated function can run in
    many threads or tasks at once.
    """
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with manager():
                return await func(*args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with manager():
            return func(*args, **kwargs)

    return cast(F, wrapper)


class Timer:
    """Measures seconds and hands them to ``record`` (``observe`` or ``set`` of a metric).

    As a context manager (``with`` or ``async with``) it times the block and
    keeps the result in :attr:`duration`; use a new one per block. As a
    decorator it times every call separately.
    """

    __slots__ = ("_record", "_start", "duration")

    def __init__(self, record: Callable[[float], None]) -> None:
        self._record = record
        self._start = 0.0
        self.duration: float | None = None
        """Seconds the block took, once it has ended."""

    def __enter__(self) -> Timer:
        self._start = perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.duration = perf_counter() - self._start
        self._record(self.duration)

    async def __aenter__(self) -> Timer:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        record = self._record
        return _decorate(func, lambda: Timer(record))


class InProgress:
    """Adds one to a gauge while a block or a call runs, and takes it away after.

    Usable as a context manager (``with`` or ``async with``) and as a
    decorator, on plain and ``async`` functions.
    """

    __slots__ = ("_dec", "_inc")

    def __init__(self, inc: Callable[[], None], dec: Callable[[], None]) -> None:
        self._inc = inc
        self._dec = dec

    def __enter__(self) -> InProgress:
        self._inc()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._dec()

    async def __aenter__(self) -> InProgress:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._dec()

    def __call__(self, func: F) -> F:
        return _decorate(func, lambda: self)


class CountExceptions:
    """Adds one to a counter whenever an exception of type ``exception`` leaves a block or a call.

    The exception still propagates. Usable as a context manager (``with``
    or ``async with``) and as a decorator, on plain and ``async`` functions.
    """

    __slots__ = ("_exception", "_inc")

    def __init__(
        self, inc: Callable[[], None], exception: type[BaseException] | tuple[type[BaseException], ...]
    ) -> None:
        self._inc = inc
        self._exception = exception

    def __enter__(self) -> CountExceptions:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, self._exception):
            self._inc()

    async def __aenter__(self) -> CountExceptions:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        return _decorate(func, lambda: self)
