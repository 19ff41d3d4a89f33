"""Loopback ports and bounded polling of HTTP endpoints."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TypeVar

__all__ = ["Deadline", "WaitTimeout", "free_port", "poll_until", "wait_http_ok"]

T = TypeVar("T")

POLL_INTERVAL = 0.1


class WaitTimeout(AssertionError):
    """A bounded wait ran out; the message says what was awaited and the last outcome."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Another process may take it before the caller binds it; tests accept that
    small race instead of passing sockets around between processes.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Deadline:
    """A point in time a whole test must finish by; hands out the time left to each wait."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self, cap: float | None = None) -> float:
        """Seconds left (at least a tiny positive number), no more than ``cap``."""
        left = max(self._end - time.monotonic(), 0.001)
        return left if cap is None else min(left, cap)


def poll_until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = POLL_INTERVAL,
) -> T:
    """Call ``check`` until it returns something other than None; return that.

    ``check`` may raise ``AssertionError`` or ``OSError`` to mean "not yet"; the
    last such error is part of the ``WaitTimeout`` raised after ``timeout``
    seconds. Other exceptions propagate at once (a crashed process, say).
    """
    end = time.monotonic() + timeout
    last: str = "never checked"
    attempts = 0
    while True:
        attempts += 1
        try:
            result = check()
        except (AssertionError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if result is not None:
                return result
            last = "condition not met"
        now = time.monotonic()
        if now >= end:
            raise WaitTimeout(
                f"gave up waiting for {what} after {timeout:.1f}s ({attempts} attempts); last outcome: {last}"
            )
        time.sleep(min(interval, end - now))


def http_get(
    url: str,
    timeout: float = 5.0,
    *,
    context: ssl.SSLContext | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, bytes]:
    """Status and body of a GET; HTTP error statuses are returned, not raised.

    ``context`` is the TLS context for an ``https://`` URL; ``headers`` are
    sent with the request (credentials, say).
    """
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def wait_http_ok(
    url: str,
    timeout: float,
    *,
    alive: Callable[[], None] | None = None,
    context: ssl.SSLContext | None = None,
) -> bytes:
    """Poll ``url`` until it answers 200 and return the body.

    ``alive`` is called before every attempt and should raise when the server
    process has died, so a crash fails at once with its own message instead of
    after the whole timeout.
    """

    def check() -> bytes:
        if alive is not None:
            alive()
        status, body = http_get(url, timeout=min(2.0, max(timeout, 0.1)), context=context)
        if status != 200:
            raise AssertionError(f"HTTP {status}: {body[:200]!r}")
        return body

    return poll_until(check, timeout, f"HTTP 200 from {url}")
