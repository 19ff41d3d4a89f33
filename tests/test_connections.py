"""Connection hygiene against a real server process: header and body timeouts, the connection bound,
accept errors and client aborts.

The connection layer is the same whatever the backend; the tests run on every shipped backend
(SQLite's files and PostgreSQL's connections also take descriptors) but the EMFILE one, which
lowers the open-file limit below what a database connection pool needs.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

from tests.support.adapter import Adapter
from tests.support.net import poll_until
from tests.support.pressure import HealthProbe, metric_value

PARTIAL_HEADERS = b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
HEALTH_BOUND = 1.0
HEALTH = b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@contextlib.contextmanager
def slow_clients(adapter: Adapter, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each sent the start of a request's headers and nothing more."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", adapter.port), timeout=10)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # the server may already have closed it
                sock.sendall(PARTIAL_HEADERS)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def raw_exchange(adapter: Adapter, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", adapter.port), timeout=timeout) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_slow_headers_are_cut_off_after_the_header_timeout(
    adapter: Callable[..., Adapter], any_storage_url: str
) -> None:
    server = adapter(any_storage_url, extra_args=("--workers", "1", "--header-timeout", "0.5s"))
    with slow_clients(server, 20) as sockets:
        # A byte now and then does not extend the time a request has for its headers.
        dribbler = sockets[0]
        started = time.monotonic()
        for _ in range(30):
            with contextlib.suppress(OSError):
                dribbler.sendall(b"x")
            if closed_by_server(dribbler):
                break
            time.sleep(0.1)  # the pace of a slow client: what is tested, bounded by the 30 rounds
        assert closed_by_server(dribbler) and time.monotonic() - started < 2
        poll_until(lambda: all(map(closed_by_server, sockets)) or None, 10, "every slow client closed")
    closed = metric_value(server.url, "remote_storage_connections_closed_total", reason="header_timeout")
    assert closed == 20
    # An idle keep-alive connection is not a slow request: it outlives the header timeout.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        request = b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(1.0)  # deliberately idle for longer than --header-timeout
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_slow_bodies_get_408(adapter: Callable[..., Adapter], any_storage_url: str) -> None:
    server = adapter(any_storage_url, extra_args=("--workers", "1", "--body-timeout", "1s"))
    answer = raw_exchange(
        server,
        b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
        b"Content-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nonly a part of the body",
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"--body-timeout" in answer
    assert b"Connection: close" in answer


def test_health_answers_under_a_connection_flood_at_a_low_open_file_limit(
    adapter: Callable[..., Adapter], any_storage_url: str
) -> None:
    """1,100 silent connections against a process allowed 1,024 open files (384 connections by default)."""
    server = adapter(
        any_storage_url, extra_args=("--workers", "1", "--header-timeout", "60s"), open_files=1024
    )
    with HealthProbe(server.url) as probe, slow_clients(server, 1100):
        poll_until(lambda: len(probe.latencies) >= 20 or None, 30, "20 health probes during the flood")
    assert not probe.failures, probe.failures
    assert probe.slowest < HEALTH_BOUND, f"slowest health answer {probe.slowest:.2f}s"
    assert metric_value(server.url, "remote_storage_connections_closed_total", reason="evicted") >= 400
    log = server.process.log_text(tail=1_000_000)
    assert "Traceback" not in log and "EMFILE" not in log
    assert len(log) < 20_000


def test_accept_errors_are_one_line_per_interval(adapter: Callable[..., Adapter]) -> None:
    """With --max-connections above the open-file limit accept() fails with EMFILE: a line, not a flood."""
    server = adapter(
        "memory://", extra_args=("--max-connections", "1000", "--header-timeout", "60s"), open_files=64
    )
    with slow_clients(server, 150):
        poll_until(
            lambda: "cannot accept connections: EMFILE" in server.process.log_text() or None,
            10,
            "the EMFILE line",
        )
        # Not a wait for an event: the flood is held for a while so that asyncio's retries of
        # accept() (one a second) fail again; those are counted and not logged.
        time.sleep(1.5)
    poll_until(
        lambda: metric_value(server.url, "remote_storage_accept_errors_total", errno="EMFILE") >= 2 or None,
        20,
        "the failed accept() calls counted",
    )
    log = server.process.log_text(tail=1_000_000)
    assert log.count("cannot accept connections: EMFILE") == 1, log[-3000:]
    assert "--max-connections" in log
    assert "Traceback" not in log


def test_a_client_abort_is_counted_not_logged_as_an_error(
    adapter: Callable[..., Adapter], any_storage_url: str
) -> None:
    server = adapter(any_storage_url, extra_args=("--workers", "1"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Encoding: snappy\r\nContent-Length: 100000\r\n\r\nthe start of a body"
        )
        # The handler has reserved the body's bytes: it is reading the body when the client goes.
        poll_until(
            lambda: metric_value(server.url, "remote_storage_inflight_write_bytes") >= 100_000 or None,
            10,
            "the handler reading the body",
        )
    poll_until(
        lambda: metric_value(server.url, "remote_storage_client_aborts_total", handler="write") == 1 or None,
        10,
        "the abort counted",
    )
    assert metric_value(server.url, "remote_storage_http_requests_total", handler="write", code="499") == 1
    assert metric_value(server.url, "remote_storage_http_requests_total", handler="write", code="500") == 0
    assert metric_value(server.url, "remote_storage_write_requests_rejected_total", reason="internal") == 0
    log = server.process.log_text()
    assert "Traceback" not in log and "internal error" not in log and "ERROR" not in log
