"""An HTTP server for ``/metrics``, on aiohttp; for asyncio code and for code without it.

One line in code without asyncio (the server runs in a thread of its own)::

    server = start_metrics_server("0.0.0.0:9464")
    ...
    server.stop()

In asyncio code, start and stop it with the application, or let
:func:`~remote_storage.instrument.service.serve` run it until a future
completes or SIGINT/SIGTERM arrives::

    async with MetricsExporter("127.0.0.1:9464"):
        await run_the_application()

    await serve(MetricsExporter("127.0.0.1:9464"), until=shutdown_future)

An aiohttp application that has its own server adds a route instead:
``app.router.add_get("/metrics", metrics_handler(registry))``.

The format follows the scrape's ``Accept`` header (OpenMetrics for
Prometheus, the text format 0.0.4 otherwise, see
:func:`~remote_storage.instrument.exposition.choose_encoder`); responses are
compressed when the client accepts it. The registry is rendered in a worker
thread, so a large one does not stall the event loop: collectors must be
thread-safe, as they are for any multi-threaded scraper.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from signal import Signals

from aiohttp import web

from remote_storage.address import parse_listen
from remote_storage.instrument.exposition import choose_encoder
from remote_storage.instrument.registry import REGISTRY, Collector
from remote_storage.instrument.service import DEFAULT_SIGNALS, ServiceContext, ServiceThread, serve

__all__ = [
    "MetricsExporter",
    "metrics_handler",
    "start_http_server",
    "start_metrics_server",
    "start_wsgi_server",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SHUTDOWN_TIMEOUT = 5.0
"""Seconds a stopping exporter waits for scrapes in progress before closing their connections."""


def metrics_handler(registry: Collector = REGISTRY) -> Handler:
    """An aiohttp handler that answers with everything ``registry`` collects."""

    async def handle_metrics(request: web.Request) -> web.StreamResponse:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = await asyncio.get_running_loop().run_in_executor(None, encoder, registry)
        response = web.Response(body=body, headers={"Content-Type": content_type})
        response.enable_compression()  # only if the client accepts an encoding
        return response

    return handle_metrics


class MetricsExporter(ServiceContext):
    """Serves ``registry`` at ``path`` on ``listen`` (``HOST:PORT``; port 0 picks a free one).

    ``listen`` may also be a port number alone (an ``int``, or ``":PORT"``):
    all interfaces. ``path=None`` answers on every path, as
    ``prometheus_client``'s server does. Invalid addresses fail in the
    constructor. :attr:`port` tells the port actually bound. Stopping
    finishes the scrapes in progress (for up to ``shutdown_timeout``
    seconds) before closing.
    """

    def __init__(
        self,
        listen: str | int,
        registry: Collector = REGISTRY,
        *,
        path: str | None = "/metrics",
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    ) -> None:
        self.host, self._port = parse_listen(listen)
        if path is not None and not path.startswith("/"):
            raise ValueError(f"the metrics path must start with '/', not {path!r}")
        self.registry = registry
        self.path = path
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system picked, if 0 was asked for)."""
        if self._runner is not None and self._runner.addresses:
            return int(self._runner.addresses[0][1])
        return self._port

    @property
    def url(self) -> str:
        """The URL of the metrics endpoint (with the host as configured)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path or '/metrics'}"

    async def start(self) -> None:
        """Listen; return once the socket is bound."""
        if self._runner is not None:
            raise RuntimeError(f"the exporter on {self.url} is already started")
        app = web.Application()
        app.router.add_get(self.path or "/{path:.*}", metrics_handler(self.registry))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        """Stop listening, let scrapes in progress finish, close. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def serve(
        self, until: Awaitable[object] | None = None, *, signals: Iterable[Signals] = DEFAULT_SIGNALS
    ) -> None:
        """Serve until ``until`` completes or a signal arrives (see :func:`.service.serve`)."""
        await serve(self, until, signals=signals)


def start_metrics_server(
    listen: str | int, registry: Collector = REGISTRY, *, path: str | None = "/metrics"
) -> ServiceThread[MetricsExporter]:
    """Serve ``registry`` on ``listen`` from a thread of its own; returns once listening.

    ``listen`` is ``HOST:PORT``, or a port number for all interfaces.
    ``server.service.port`` is the port bound; ``server.stop()`` stops it.
    """
    return ServiceThread(MetricsExporter(listen, registry, path=path), name=f"metrics-exporter {listen}")


def start_http_server(
    port: int, addr: str = "0.0.0.0", registry: Collector = REGISTRY
) -> tuple[ServiceThread[MetricsExporter], threading.Thread]:
    """``prometheus_client``'s entry point: serve ``registry`` on ``addr:port``, every path, from a thread.

    Returns ``(server, thread)`` like ``prometheus_client`` 0.20 and later:
    ``server.shutdown()`` stops it (gracefully), ``thread`` is the daemon
    thread it runs in. The same as ``start_metrics_server(f"{addr}:{port}",
    registry, path=None)``; TLS arguments are not taken (put a proxy in
    front, or use :class:`MetricsExporter` in an application that has TLS).
    """
    host = f"[{addr}]" if ":" in addr else addr
    server = start_metrics_server(f"{host}:{port}", registry, path=None)
    return server, server.thread


start_wsgi_server = start_http_server
"""``prometheus_client``'s other name for :func:`start_http_server`."""
