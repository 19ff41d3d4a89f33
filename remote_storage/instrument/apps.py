"""A registry's ``/metrics`` as a WSGI or an ASGI application, for servers and frameworks you already run.

    >>> from remote_storage.instrument import make_wsgi_app
    >>> from wsgiref.simple_server import make_server
    >>> httpd = make_server("127.0.0.1", 8000, make_wsgi_app())  # doctest: +SKIP
    >>> httpd.serve_forever()  # doctest: +SKIP

Both answer ``GET`` and ``HEAD`` on any path they are mounted at, as
``prometheus_client``'s do: the format follows the ``Accept`` header
(:func:`~remote_storage.instrument.exposition.choose_encoder`), the body is
gzip-compressed when the client accepts gzip (unless
``disable_compression``), and ``?name[]=a&name[]=b`` limits the answer to
the samples with those names. ``/favicon.ico`` gets an empty 200, so a
browser's request for it does not render the registry.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, MutableMapping
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from remote_storage.instrument.exposition import choose_encoder
from remote_storage.instrument.registry import REGISTRY, Collector
from remote_storage.instrument.samples import MetricFamily

__all__ = ["ASGIApplication", "make_asgi_app", "make_wsgi_app", "render"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application: ``await app(scope, receive, send)``."""

_METHODS = ("GET", "HEAD")
_ALLOW = ", ".join(_METHODS)


class _Named:
    """The samples of ``registry`` whose names are in ``names`` (families without one are left out)."""

    def __init__(self, registry: Collector, names: Collection[str]) -> None:
        self.registry = registry
        self.names = frozenset(names)

    def collect(self) -> Iterator[MetricFamily]:
        for family in self.registry.collect():
            samples = [sample for sample in family.samples if sample.name in self.names]
            if samples:
                yield MetricFamily(family.name, family.type, family.help, family.unit, samples)


def _accepts_gzip(accept_encoding: str) -> bool:
    for coding in accept_encoding.split(","):
        name, *parameters = (part.strip() for part in coding.split(";"))
        if name.lower() == "gzip":
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parameters)
    return False


def render(
    registry: Collector,
    accept: str = "",
    accept_encoding: str = "",
    query_string: str = "",
    disable_compression: bool = False,
) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers of a scrape of ``registry`` with these request headers and query."""
    encoder, content_type = choose_encoder(accept)
    names = parse_qs(query_string).get("name[]")
    body = encoder(_Named(registry, names) if names else registry)
    headers = [("Content-Type", content_type)]
    if not disable_compression and _accepts_gzip(accept_encoding):
        body = gzip.compress(body, compresslevel=6)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return body, headers


def make_wsgi_app(registry: Collector = REGISTRY, disable_compression: bool = False) -> WSGIApplication:
    """A WSGI application that answers every ``GET`` with ``registry``'s metrics (see the module)."""

    def prometheus_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in _METHODS:
            start_response("405 Method Not Allowed", [("Allow", _ALLOW), ("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        body, headers = render(
            registry,
            environ.get("HTTP_ACCEPT", ""),
            environ.get("HTTP_ACCEPT_ENCODING", ""),
            environ.get("QUERY_STRING", ""),
            disable_compression,
        )
        start_response("200 OK", headers)
        return [b""] if method == "HEAD" else [body]

    return prometheus_app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_asgi_app(registry: Collector = REGISTRY, disable_compression: bool = False) -> ASGIApplication:
    """An ASGI application that answers every ``GET`` with ``registry``'s metrics (see the module).

    The registry is rendered in a worker thread, so a large one does not
    stall the event loop. Lifespan events are acknowledged; other scope
    types (websockets) are refused with ``ValueError``.
    """

    async def prometheus_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the metrics app serves HTTP, not {scope['type']!r}")
        method = scope.get("method", "GET")
        if method not in _METHODS:
            allow = [(b"allow", _ALLOW.encode()), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 405, "headers": allow})
            await send({"type": "http.response.body", "body": b""})
            return
        request = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        body, headers = await asyncio.to_thread(
            render,
            registry,
            request.get("accept", ""),
            request.get("accept-encoding", ""),
            scope.get("query_string", b"").decode("latin-1"),
            disable_compression,
        )
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        await send({"type": "http.response.start", "status": 200, "headers": encoded})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return prometheus_app
