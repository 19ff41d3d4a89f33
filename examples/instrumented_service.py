"""A small aiohttp web service instrumented with ``remote_storage.instrument``.

Run it, send it some requests and look at its metrics::

    python examples/instrumented_service.py --listen 127.0.0.1:8080
    curl http://127.0.0.1:8080/hello/world
    curl http://127.0.0.1:8080/metrics

It exposes the metrics Prometheus users expect from a web service:

========================================================  =========  ===================================
``example_http_requests_total{method,route}``             counter    requests received
``example_http_responses_total{code_class}``              counter    responses by class: 2xx, 4xx, 5xx...
``example_http_request_duration_seconds{route}``          histogram  time to answer
``example_http_requests_in_progress``                     gauge      requests being answered
``example_connected_clients``                             gauge      open client connections
``example_build_info{version}``                           info       version of the service
``process_*``                                             various    CPU, memory, file descriptors
========================================================  =========  ===================================

Routes: ``/`` and ``/hello/{name}`` answer 200, ``/slow?seconds=S`` after S
seconds (at most 2), ``/error`` answers 500, anything else 404. SIGINT or
SIGTERM stops it gracefully: requests in progress are finished first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remote_storage.config import parse_listen
from remote_storage.instrument import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Info,
    Registry,
    bind,
    exponential_buckets,
    metrics_handler,
    serve,
)

VERSION = "1.0.0"
MAX_SLOW_SECONDS = 2.0


class Metrics:
    """The service's metrics, defined once; the status classes are bound up front."""

    def __init__(self, registry: Registry) -> None:
        self.requests = Counter(
            "example_http_requests",
            "HTTP requests received, by method and route.",
            ["method", "route"],
            registry=registry,
        )
        responses = Counter(
            "example_http_responses",
            "HTTP responses sent, by status class.",
            ["code_class"],
            registry=registry,
        )
        by_class = bind(
            responses,
            code_class={
                "informational": "1xx",
                "success": "2xx",
                "redirection": "3xx",
                "client_error": "4xx",
                "server_error": "5xx",
            },
        )
        # Indexed by status // 100: the request path does no label lookup.
        self.responses_by_class = (
            by_class.server_error,  # 0xx does not exist; count it as a server error
            by_class.informational,
            by_class.success,
            by_class.redirection,
            by_class.client_error,
            by_class.server_error,
        )
        self.duration = Histogram(
            "example_http_request_duration_seconds",
            "Time from receiving a request to sending its response, by route.",
            ["route"],
            buckets=exponential_buckets(0.001, 2, 12),
            registry=registry,
        )
        self.in_progress = Gauge(
            "example_http_requests_in_progress", "HTTP requests being answered.", registry=registry
        )
        self.connected_clients = Gauge(
            "example_connected_clients", "Client connections currently open.", registry=registry
        )
        Info("example_build", "Version of the example service.", registry=registry).info({"version": VERSION})


def instrumentation(metrics: Metrics) -> Middleware:
    """A middleware that counts and times every request."""

    @web.middleware
    async def instrument(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.requests.labels(request.method, route).inc()
        status = 500
        with metrics.in_progress.track_inprogress(), metrics.duration.labels(route).time():
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                metrics.responses_by_class[min(status // 100, 5)].inc()

    return instrument


async def hello(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "world")
    return web.Response(text=f"Hello, {name}!\n")


async def slow(request: web.Request) -> web.Response:
    try:
        seconds = min(float(request.query.get("seconds", "0.1")), MAX_SLOW_SECONDS)
    except ValueError:
        raise web.HTTPBadRequest(text="seconds must be a number\n") from None
    await asyncio.sleep(max(seconds, 0.0))
    return web.Response(text=f"Slept {seconds}s\n")


async def error(request: web.Request) -> web.Response:
    return web.Response(status=500, text="Something went wrong (on purpose)\n")


def make_app(metrics: Metrics, registry: Registry) -> web.Application:
    app = web.Application(middlewares=[instrumentation(metrics)])
    app.router.add_get("/", hello)
    app.router.add_get("/hello/{name}", hello)
    app.router.add_get("/slow", slow)
    app.router.add_get("/error", error)
    app.router.add_get("/metrics", metrics_handler(registry))
    return app


class ExampleService:
    """The web service, started and stopped by :func:`remote_storage.instrument.serve`."""

    def __init__(self, listen: str, registry: Registry = REGISTRY) -> None:
        self.host, self.port = parse_listen(listen)
        self.metrics = Metrics(registry)
        self.runner = web.AppRunner(make_app(self.metrics, registry), access_log=None, shutdown_timeout=5.0)

    async def start(self) -> None:
        await self.runner.setup()
        server = self.runner.server
        assert server is not None
        self.metrics.connected_clients.set_function(lambda: len(server.connections))
        await web.TCPSite(self.runner, self.host, self.port).start()
        print(f"serving on http://{self.host}:{self.port}/ (metrics at /metrics)", flush=True)

    async def stop(self) -> None:
        await self.runner.cleanup()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An instrumented aiohttp web service.")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to listen on")
    args = parser.parse_args(argv)
    try:
        service = ExampleService(args.listen)
    except ValueError as exc:
        parser.error(f"--listen: {exc}")
    asyncio.run(serve(service))


if __name__ == "__main__":
    main()
