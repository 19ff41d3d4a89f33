"""A scrape target in the test process whose exposition the test controls."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

__all__ = ["StaticExporter"]

JOIN_TIMEOUT = 10.0


class StaticExporter:
    """Serves ``text`` (Prometheus text format 0.0.4) on 127.0.0.1 at ``/metrics``.

    Change ``text`` with ``set_text`` between scrapes: a series that is left
    out gets a stale marker from the scraping Prometheus. Use as a context
    manager so the server thread always stops.
    """

    def __init__(self, text: str) -> None:
        self._lock = threading.Lock()
        self._text = text
        self._scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter._next_body()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="static-exporter", daemon=True
        )

    @property
    def scrapes(self) -> int:
        """How many times ``/metrics`` was served."""
        with self._lock:
            return self._scrapes

    def set_text(self, text: str) -> None:
        with self._lock:
            self._text = text

    def _next_body(self) -> bytes:
        with self._lock:
            self._scrapes += 1
            return self._text.encode()

    def __enter__(self) -> StaticExporter:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(JOIN_TIMEOUT)
