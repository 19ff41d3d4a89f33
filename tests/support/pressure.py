"""Tools for tests that put the service under pressure: timed health probes, raw posts, metrics, memory."""

from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from .net import http_get

__all__ = ["HealthProbe", "Reply", "metric_value", "peak_rss_bytes", "post"]

PROBE_INTERVAL = 0.1
PROBE_TIMEOUT = 10.0
MAX_PROBES = 3000


class Reply:
    """Status, headers and body of one answered request."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:120]!r})"


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = 60.0) -> Reply:
    """POST ``body`` on a new connection and read the whole answer."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


class HealthProbe:
    """Asks ``/-/healthy`` every :data:`PROBE_INTERVAL` seconds in a thread and keeps the slowest answer.

    A probe that fails or times out counts as :data:`PROBE_TIMEOUT` seconds.

    >>> with HealthProbe(adapter.url) as probe:  # doctest: +SKIP
    ...     attack()
    >>> assert probe.slowest < 1.0
    """

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/-/healthy"
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    @property
    def slowest(self) -> float:
        return max(self.latencies, default=0.0)

    def _run(self) -> None:
        for _ in range(MAX_PROBES):
            if self._stop.is_set():
                return
            started = time.monotonic()
            try:
                status, _ = http_get(self.url, timeout=PROBE_TIMEOUT)
            except OSError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                self.latencies.append(PROBE_TIMEOUT)
            else:
                if status != 200:
                    self.failures.append(f"HTTP {status}")
                self.latencies.append(time.monotonic() - started)
            self._stop.wait(PROBE_INTERVAL)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT + 5)


def metric_value(base_url: str, name: str, **labels: str) -> float:
    """The value of one sample of the service's ``/metrics`` (0 when it is not there yet)."""
    status, body = http_get(f"{base_url}/metrics")
    assert status == 200, body[:200]
    for line in body.decode().splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")
