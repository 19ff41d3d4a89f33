"""Connection hygiene: header timeouts, a bound on open connections, quiet accept errors, client aborts.

aiohttp closes idle keep-alive connections (``--idle-timeout``) but has no
timeout on a request's headers: a client that sends one header byte a
minute keeps its connection, and a file descriptor, forever. This module
adds what a server facing the open network needs:

* **Header timeout** (``--header-timeout``): a connection has that long to
  deliver a request's headers, counted from the connection's start or from
  the first byte of the request (a keep-alive connection idling between
  requests is not timed by it). Slower connections are closed.
* **A bound on open connections** (``--max-connections``; by default derived
  from the open-file limit, see :func:`default_max_connections`). At the
  bound a new connection evicts the oldest connection still waiting for its
  headers (a slow or silent client); when there is none, the new connection
  is closed at once. So a flood of idle connections cannot lock out
  Prometheus or a health check, and the process never runs out of file
  descriptors for its own work.
* **Accept errors** (``EMFILE``, ``ENFILE``, ...) are logged as one line per
  kind at most every :data:`ACCEPT_ERROR_INTERVAL` seconds, with the count
  of the ones not logged, instead of a traceback per failed ``accept()``.
* **Client aborts**: :func:`client_gone` tells a client that went away
  from a server fault, so the server can count it (status 499) instead of
  logging a 500 with a traceback.

The body timeout (``--body-timeout``) is applied where bodies are read, by
the request handlers.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

__all__ = [
    "ACCEPT_ERROR_INTERVAL",
    "CLIENT_CLOSED_REQUEST",
    "KERNEL_BACKLOG",
    "LISTEN_BACKLOG",
    "AcceptErrorLog",
    "ConnectionGuard",
    "GuardedAppRunner",
    "abort",
    "client_gone",
    "deepen_backlog",
    "default_max_connections",
]

log = logging.getLogger("remote_storage.connections")

#: Status recorded (never sent) for requests whose client went away, as nginx logs them.
CLIENT_CLOSED_REQUEST = 499
#: Seconds between two log lines about the same kind of accept error.
ACCEPT_ERROR_INTERVAL = 10.0
#: Connections asyncio accepts at each turn of the loop (the ``backlog`` it is given). A connection
#: reaches the bound two turns after it was accepted, so descriptors for four times that many
#: connections are kept in reserve (see :func:`default_max_connections`).
LISTEN_BACKLOG = 128
#: Connections the kernel may queue before they are accepted (it caps this at ``net.core.somaxconn``):
#: deeper than :data:`LISTEN_BACKLOG`, since a SYN dropped from a full queue costs a client a second.
KERNEL_BACKLOG = 4096
#: Connections allowed when the open-file limit is unlimited.
UNLIMITED_FILES_CONNECTIONS = 10_000

_ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def default_max_connections() -> int:
    """Open connections allowed when ``--max-connections`` is 0: the open-file limit less a reserve.

    The reserve is an eighth of the limit (at least 64 descriptors) for the
    process's own files (the listening socket, database files and
    connections, logs), plus four times :data:`LISTEN_BACKLOG`: asyncio
    accepts up to that many connections at each turn of its loop, a
    connection reaches the bound two turns later, and the connections
    closed to make room give their descriptors back one more turn later.
    With the common soft limit of 1,024 that allows 384 connections; at
    least 16 are always allowed.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return UNLIMITED_FILES_CONNECTIONS
    return max(16, soft - max(64, soft // 8) - 4 * LISTEN_BACKLOG)


def deepen_backlog(site: web.BaseSite, backlog: int = KERNEL_BACKLOG) -> None:
    """Let the kernel queue ``backlog`` connections on the site's sockets; asyncio still accepts
    :data:`LISTEN_BACKLOG` at a time."""
    server = getattr(site, "_server", None)  # the asyncio.Server aiohttp keeps for the site
    for listening in getattr(server, "sockets", None) or ():
        with socket.socket(fileno=os.dup(listening.fileno())) as sock:  # the same socket, another fd
            sock.listen(backlog)


def client_gone(request: web.Request, exc: BaseException) -> bool:
    """Whether ``exc`` means the client closed the connection while its request was served."""
    if not isinstance(exc, ConnectionError | ClientPayloadError | RequestPayloadError):
        return False
    transport = request.transport
    return transport is None or transport.is_closing()


def abort(request: web.Request) -> None:
    """Close the request's connection at once (a started response cannot be finished)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class ConnectionGuard:
    """The open connections of one server, their bound and the header timeout.

    ``on_close(reason)`` is called for every connection this guard closes:
    ``"header_timeout"``, ``"evicted"`` (at the bound, to make room) or
    ``"refused"`` (at the bound, with nothing to evict). ``on_accept_error(name)``
    is called for every failed ``accept()`` (``"EMFILE"``, ...), logged or not.
    """

    def __init__(
        self,
        max_connections: int,
        header_timeout: float,
        on_close: Callable[[str], None] | None = None,
        on_accept_error: Callable[[str], None] | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"--max-connections: must be positive, got {max_connections}")
        if header_timeout <= 0:
            raise ValueError(f"--header-timeout: must be positive, got {header_timeout}")
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.on_close = on_close
        self.on_accept_error = on_accept_error
        self._open: dict[_GuardedHandler, None] = {}  # in the order they were opened

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, handler: _GuardedHandler) -> bool:
        """Register a new connection; False when it must be closed (nothing could make room)."""
        if len(self._open) >= self.max_connections:
            victim = next((h for h in self._open if h.waiting_for_headers), None)
            if victim is None:
                self._closed("refused")
                return False
            self.forget(victim)
            victim.force_close()
            self._closed("evicted")
        self._open[handler] = None
        return True

    def accept_failed(self, name: str) -> None:
        if self.on_accept_error is not None:
            self.on_accept_error(name)

    def forget(self, handler: _GuardedHandler) -> None:
        self._open.pop(handler, None)

    def _closed(self, reason: str) -> None:
        log.debug("closed a client connection: %s", reason)
        if self.on_close is not None:
            self.on_close(reason)


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler with a header clock and a place in a :class:`ConnectionGuard`.

    It reads private attributes of ``RequestHandler`` to tell whether a new
    request is awaited (``_waiter`` set, ``_messages`` empty), when headers
    were parsed (``_request_count``) and whether a handler runs
    (``_request_in_progress``); ``tests/test_connections.py`` fails if they
    change meaning.
    """

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._header_since: float | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    @property
    def waiting_for_headers(self) -> bool:
        return self._header_since is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._guard.admit(self):
            self.force_close()
            return
        self._start_header_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.forget(self)
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and self._header_since is None and self._waiter is not None and not self._messages:
            self._start_header_clock()  # the first byte of a new request on an idle connection
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._stop_header_clock()  # the headers are in

    def _start_header_clock(self) -> None:
        self._header_since = self._loop.time()
        if self._header_timer is None:
            self._header_timer = self._loop.call_at(
                self._header_since + self._guard.header_timeout, self._header_deadline
            )

    def _stop_header_clock(self) -> None:
        self._header_since = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        since = self._header_since
        if since is None or self.transport is None or self._request_in_progress:
            self._header_since = None
            return
        due = since + self._guard.header_timeout
        if self._loop.time() < due:  # a newer request started the clock again
            self._header_timer = self._loop.call_at(due, self._header_deadline)
            return
        self._guard.forget(self)
        self._guard._closed("header_timeout")
        self.force_close()


class _GuardedServer(web.Server):
    """aiohttp's server whose connections are :class:`_GuardedHandler`."""

    guard: ConnectionGuard

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, self.guard, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections obey a :class:`ConnectionGuard`.

    >>> runner = GuardedAppRunner(app, ConnectionGuard(896, 10.0), keepalive_timeout=75)  # doctest: +SKIP
    """

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds the Server itself; only the handler it makes per connection differs.
        server.__class__ = _GuardedServer
        assert isinstance(server, _GuardedServer)
        server.guard = self.guard
        return server


class AcceptErrorLog:
    """An event-loop exception handler that turns failed ``accept()`` calls into rare one-line logs.

    Install with ``loop.set_exception_handler(AcceptErrorLog(guard))``; each
    failure is also reported to ``guard.accept_failed``. Every other context
    goes to the loop's default handler.
    """

    def __init__(self, guard: ConnectionGuard | None = None, interval: float = ACCEPT_ERROR_INTERVAL) -> None:
        self.guard = guard
        self.interval = interval
        self._last: dict[int, float] = {}
        self._suppressed: dict[int, int] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS):
            loop.default_exception_handler(context)
            return
        code = exc.errno
        assert code is not None
        name = errno.errorcode.get(code, str(code))
        if self.guard is not None:
            self.guard.accept_failed(name)
        now = time.monotonic()
        last = self._last.get(code)
        if last is not None and now - last < self.interval:
            self._suppressed[code] = self._suppressed.get(code, 0) + 1
            return
        suppressed = self._suppressed.pop(code, 0)
        self._last[code] = now
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        log.error(
            "cannot accept connections: %s (%s)%s; lower --max-connections or raise the open-file limit "
            "(ulimit -n)",
            name,
            exc.strerror,
            more,
        )
