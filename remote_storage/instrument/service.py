"""Running an exporter or a pusher: until a future or a signal, or in a thread of its own.

Both :class:`~remote_storage.instrument.exporter.MetricsExporter` and
:class:`~remote_storage.instrument.pusher.Pusher` are *services*: objects
with ``async start()`` and ``async stop()``. In asyncio code, :func:`serve`
runs one until a future completes or the process gets SIGINT or SIGTERM,
then stops it gracefully; code without an event loop runs one in a
:class:`ServiceThread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Iterable
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

__all__ = ["Service", "ServiceContext", "ServiceThread", "serve"]

DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_TIMEOUT = 30.0


class Service(Protocol):
    """Something that runs in the background between ``start()`` and ``stop()``."""

    async def start(self) -> None:
        """Begin; return once running (an exporter is listening), raise if it cannot."""

    async def stop(self) -> None:
        """End gracefully; return once finished. Called once, after a successful ``start()``."""


class ServiceContext:
    """``async with service:`` starts it and stops it, for services that inherit this."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def serve(
    service: Service,
    until: Awaitable[object] | None = None,
    *,
    signals: Iterable[signal.Signals] = DEFAULT_SIGNALS,
) -> None:
    """Start ``service``, wait for ``until`` or one of ``signals``, then stop it.

    Signal handlers are installed only when running in the main thread (the
    only one asyncio allows them in) and removed afterwards; pass
    ``signals=()`` to leave signals alone. A coroutine given as ``until`` is
    cancelled if a signal comes first; a future is left as it is.
    """
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future[None] = loop.create_future()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            try:
                loop.add_signal_handler(signum, _resolve, stopping)
            except (NotImplementedError, RuntimeError):  # no signal support in this loop
                continue
            installed.append(signum)
    owned = until is not None and not asyncio.isfuture(until)
    waiter: asyncio.Future[object] | None = asyncio.ensure_future(until) if until is not None else None
    try:
        await service.start()
        try:
            waits: list[asyncio.Future[object] | asyncio.Future[None]] = [stopping]
            if waiter is not None:
                waits.append(waiter)
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await service.stop()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        if owned and waiter is not None and not waiter.done():
            waiter.cancel()


S = TypeVar("S", bound=Service)


class ServiceThread(Generic[S]):
    """Runs ``service`` on an event loop of its own, in a daemon thread.

    The constructor returns once ``service.start()`` has finished, and
    raises what it raised. :meth:`stop` stops the service gracefully and
    waits for the thread; so does leaving a ``with`` block. The thread is a
    daemon, so a forgotten service does not keep the process alive (but is
    not stopped gracefully either).
    """

    def __init__(self, service: S, *, name: str, start_timeout: float = STOP_TIMEOUT) -> None:
        self.service = service
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name=name, daemon=True)
        self._thread.start()
        if not self._started.wait(start_timeout):
            raise TimeoutError(f"{name} did not start within {start_timeout}s")
        if self._error is not None:
            self._thread.join(start_timeout)
            raise self._error

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = self._loop.create_future()
        try:
            await self.service.start()
        except BaseException as exc:  # handed to the thread that called the constructor
            self._error = exc
            return
        finally:
            self._started.set()
        try:
            await self._stopping
        finally:
            await self.service.stop()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the service and wait up to ``timeout`` seconds for the thread to end."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(_resolve, stopping)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self._thread.name} did not stop within {timeout}s")

    @property
    def thread(self) -> threading.Thread:
        """The daemon thread the service runs in."""
        return self._thread

    def shutdown(self) -> None:
        """:meth:`stop`, under the name ``socketserver`` servers (and ``prometheus_client``'s) use."""
        self.stop()

    def __enter__(self) -> ServiceThread[S]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
