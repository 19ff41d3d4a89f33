"""Sending remote-write requests: bounded concurrency, an optional rate, in-order per series.

``concurrency`` workers share one keep-alive connection pool (aiohttp's
client). Each takes the next body from a :class:`~.bodies.BodySource`,
waits for its turn under the rate limit, posts it and records the outcome
in a :class:`~.report.Tally`. Like Prometheus, which sends each series
through one shard, requests for the same series never overlap: a request
waits until the previous request of its template (same series) has been
answered, so every series' samples arrive in timestamp order. Failed
requests are counted, not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from remote_storage import __version__
from remote_storage.loadgen.bodies import BodySource
from remote_storage.loadgen.encoding import Protocol
from remote_storage.loadgen.report import Tally
from remote_storage.loadgen.workload import Batch

__all__ = ["DEFAULT_REQUESTS", "Pacer", "SendOptions", "Sender"]

DEFAULT_REQUESTS = 4_000
SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
USER_AGENT = f"remote-storage-loadgen/{__version__}"


class SendOptionsError(ValueError):
    """A sending option is unusable; the message names the option to change."""


@dataclass(frozen=True)
class SendOptions:
    """Where and how hard to send; validated when constructed.

    The run stops after ``requests`` requests or ``duration`` seconds,
    whichever comes first; without either it stops after
    :data:`DEFAULT_REQUESTS` requests. ``rate`` is in samples per second
    (None: as fast as the receiver answers).
    """

    url: str
    concurrency: int = 8
    rate: float | None = None
    requests: int | None = None
    duration: float | None = None
    timeout: float = 30.0
    headers: Mapping[str, str] = field(default_factory=dict)
    buffer_bytes: int = 512 * 2**20

    def __post_init__(self) -> None:
        checks = [
            (
                self.url.startswith(("http://", "https://")),
                f"URL must start with http:// or https://: {self.url}",
            ),
            (self.concurrency >= 1, f"--concurrency must be at least 1, got {self.concurrency}"),
            (self.rate is None or self.rate > 0, f"--rate must be positive, got {self.rate}"),
            (
                self.requests is None or self.requests >= 1,
                f"--requests must be at least 1, got {self.requests}",
            ),
            (self.duration is None or self.duration > 0, f"--duration must be positive, got {self.duration}"),
            (self.timeout > 0, f"--timeout must be positive, got {self.timeout}"),
            (self.buffer_bytes >= 1 << 20, f"--buffer must be at least 1MiB, got {self.buffer_bytes} bytes"),
        ]
        for ok, message in checks:
            if not ok:
                raise SendOptionsError(message)

    @property
    def request_limit(self) -> int | None:
        """The number of requests to send; None when only ``duration`` bounds the run."""
        if self.requests is None and self.duration is None:
            return DEFAULT_REQUESTS
        return self.requests


class Pacer:
    """Spaces requests so that samples leave at ``rate`` per second (no limit when None).

    A request is due when the previous one's samples have "drained" at the
    rate; a late sender does not send a burst to catch up.
    """

    def __init__(self, rate: float | None) -> None:
        self._rate = rate
        self._next = 0.0

    async def wait(self, samples: int, stop: asyncio.Event) -> bool:
        """Wait for the turn of a request of ``samples`` samples; False if ``stop`` was set meanwhile."""
        if self._rate is None:
            return not stop.is_set()
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + samples / self._rate
        if slot > now:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), slot - now)
        return not stop.is_set()


def _accepted(response: aiohttp.ClientResponse, samples: int) -> int:
    """Samples the receiver says it wrote (v2 header), else all of a 2xx and none otherwise."""
    written = response.headers.get(SAMPLES_WRITTEN)
    if written is not None and written.isdigit():
        return int(written)
    return samples if 200 <= response.status < 300 else 0


class Sender:
    """Posts bodies to one URL; use as an async context manager around :meth:`run`."""

    def __init__(self, options: SendOptions, protocol: Protocol) -> None:
        self.options = options
        self.tally = Tally()
        self._headers = {"User-Agent": USER_AGENT, **protocol.headers, **options.headers}
        self._session: aiohttp.ClientSession | None = None
        self._order: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pacer = Pacer(options.rate)

    async def __aenter__(self) -> Sender:
        connector = aiohttp.TCPConnector(limit=self.options.concurrency, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.options.timeout),
            auto_decompress=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(self, source: BodySource, stop: asyncio.Event) -> None:
        """Send until ``source`` runs out or ``stop`` is set; requests in flight then finish."""
        workers = [
            asyncio.create_task(self._worker(source, stop), name=f"loadgen-sender-{n}")
            for n in range(self.options.concurrency)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()

    async def _worker(self, source: BodySource, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await source.next()
            if batch is None:
                return
            async with self._order[batch.template]:
                if not await self._pacer.wait(batch.samples, stop):
                    return
                await self.post(batch)

    async def post(self, batch: Batch) -> None:
        """Send one request and record its outcome."""
        if self._session is None:
            raise RuntimeError("use the Sender as an async context manager")
        size = len(batch.body)
        started = time.perf_counter()
        try:
            async with self._session.post(
                self.options.url, data=batch.body, headers=self._headers
            ) as response:
                body = await response.read()
                accepted = _accepted(response, batch.samples)
        except TimeoutError:
            message = f"no response within --timeout {self.options.timeout:g}s"
            self.tally.failure("timeout", message, time.perf_counter() - started, batch.samples, size)
        except aiohttp.ClientError as exc:
            kind = type(exc).__name__
            self.tally.failure(kind, str(exc) or kind, time.perf_counter() - started, batch.samples, size)
        else:
            latency = time.perf_counter() - started
            self.tally.response(response.status, body, latency, batch.samples, accepted, size)
