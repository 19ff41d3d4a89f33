"""Pushing a registry's samples over Prometheus remote write, for jobs nobody scrapes.

A :class:`Pusher` collects its registry every ``interval`` seconds and sends
the samples, stamped with the time of collection, to any remote-write
endpoint (this service, Prometheus with ``--web.enable-remote-write-receiver``,
Mimir, ...) as remote write 1.0 does: a snappy-compressed
``prometheus.WriteRequest`` with the type, help and unit of every family::

    async with Pusher("http://127.0.0.1:9201/api/v1/write", registry, labels={"job": "batch"}):
        await run_the_job()      # pushed every 15 s, and once more when leaving the block

    with start_pusher("http://127.0.0.1:9201/api/v1/write", registry, interval=5):
        run_the_job()            # the same from code without asyncio

Delivery follows Prometheus' own sender: a push answered with 5xx or 429,
or that fails to connect or times out, is retried with exponential backoff
(``min_backoff`` doubling up to ``max_backoff``, or the server's
``Retry-After`` when it sends one, capped the same way), at most
``max_retries`` times; any other answer outside 2xx means the request
itself is wrong and is not retried. A retried request is the same bytes,
so an endpoint that stored it before failing sees a duplicate, which remote
write receivers accept. Every value is cumulative, so a push that is given
up only loses resolution: the next one carries the totals.

``labels`` are added to every series that lacks them (as Prometheus'
``external_labels``); ``job`` and ``instance`` are the usual ones.

The schedule and the backoff run on a :class:`PushClock`, the event loop's
time by default; a test passes its own to step through them without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import aiohttp

from remote_storage.instrument.registry import REGISTRY, Collector
from remote_storage.instrument.samples import MetricFamily
from remote_storage.instrument.service import ServiceContext, ServiceThread
from remote_storage.protocol import snappy
from remote_storage.protocol.write import encode_v1
from remote_storage.storage import Labels, MetricMetadata, MetricType, TimeSeries

__all__ = [
    "LoopClock",
    "PushClock",
    "PushError",
    "PushFailed",
    "PushRejected",
    "Pusher",
    "start_pusher",
    "write_request",
]

_log = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "remote-storage-instrument-pusher/0.1",
}
_BODY_IN_ERRORS = 512


class PushError(Exception):
    """A push did not reach its endpoint; see the subclasses."""


class PushRejected(PushError):
    """The endpoint refused the push with a status that a retry would not change (4xx but 429)."""

    def __init__(self, url: str, status: int, body: str) -> None:
        self.url = url
        self.status = status
        self.body = body
        super().__init__(
            f"remote write to {url} was rejected with HTTP {status} ({body!r}); not retried, since "
            "the request itself is refused: check the URL, the credentials and the endpoint's limits"
        )


class PushFailed(PushError):
    """The push was given up: ``attempts`` tries all failed (5xx, 429, network), or the pusher stopped."""

    def __init__(self, url: str, attempts: int, last: str) -> None:
        self.url = url
        self.attempts = attempts
        self.last = last
        super().__init__(
            f"remote write to {url} failed {attempts} time(s), last with {last}; "
            "raise max_retries or max_backoff to retry for longer"
        )


_METRIC_TYPES = {
    "counter": MetricType.COUNTER,
    "gauge": MetricType.GAUGE,
    "histogram": MetricType.HISTOGRAM,
    "gaugehistogram": MetricType.GAUGEHISTOGRAM,
    "summary": MetricType.SUMMARY,
    "info": MetricType.INFO,
    "stateset": MetricType.STATESET,
    "unknown": MetricType.UNKNOWN,
}


def write_request(
    families: Iterable[MetricFamily], labels: Mapping[str, str], timestamp_ms: int
) -> tuple[list[TimeSeries], list[MetricMetadata]]:
    """Every sample as a one-sample series at ``timestamp_ms``, and every family's metadata.

    ``labels`` are added to series that do not have them. Metadata names the
    family as OpenMetrics does (``requests`` for ``requests_total``), as
    Prometheus does when it scrapes OpenMetrics.
    """
    series: list[TimeSeries] = []
    metadata: list[MetricMetadata] = []
    for family in families:
        metadata.append(MetricMetadata(family.name, _METRIC_TYPES[family.type], family.help, family.unit))
        for sample in family.samples:
            pairs = {**labels, **sample.labels, "__name__": sample.name}
            series.append(TimeSeries(Labels.from_mapping(pairs), [timestamp_ms], [float(sample.value)]))
    return series, metadata


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class PushClock(Protocol):
    """The time a :class:`Pusher` keeps its schedule and backoff by."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``; True if it is set."""
        ...


class LoopClock:
    """The running event loop's clock: the default :class:`PushClock`."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
        return event.is_set()


class Pusher(ServiceContext):
    """Sends ``registry`` to the remote-write ``url`` every ``interval`` seconds.

    Start and stop it with ``async with`` (or :meth:`start` and
    :meth:`stop`); from code without asyncio use :func:`start_pusher`. With
    ``interval=None`` it only pushes when :meth:`push` is awaited (a batch
    job pushing once at its end). ``push_on_stop`` sends one last push,
    without retries, when stopping. ``clock`` is what the schedule and the
    backoff wait on (:class:`LoopClock` when None). Settings are checked
    here, so a bad one fails at once.
    """

    def __init__(
        self,
        url: str,
        registry: Collector = REGISTRY,
        *,
        interval: float | None = 15.0,
        labels: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        min_backoff: float = 0.03,
        max_backoff: float = 5.0,
        headers: Mapping[str, str] | None = None,
        push_on_stop: bool = True,
        clock: PushClock | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the remote-write URL must start with http:// or https://, not {url!r}")
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds or None, not {interval!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries!r}")
        if not 0 < min_backoff <= max_backoff:
            raise ValueError(
                f"backoff needs 0 < min_backoff <= max_backoff, got {min_backoff!r} and {max_backoff!r}"
            )
        self.url = url
        self.registry = registry
        self.interval = interval
        self.labels = dict(labels or {})
        self.timeout = timeout
        self.max_retries = max_retries
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.push_on_stop = push_on_stop
        self.clock: PushClock = LoopClock() if clock is None else clock
        self._headers = {**HEADERS, **(headers or {})}
        self._session: aiohttp.ClientSession | None = None
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def body(self, timestamp_ms: int | None = None) -> bytes:
        """The compressed request body for what the registry holds now (or at ``timestamp_ms``)."""
        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        series, metadata = write_request(self.registry.collect(), self.labels, stamp)
        return snappy.compress(encode_v1(series, metadata))

    async def start(self) -> None:
        """Open the HTTP session and, with an interval, start pushing (the first push at once)."""
        if self._session is not None:
            raise RuntimeError(f"the pusher to {self.url} is already started")
        self._stopping = asyncio.Event()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        if self.interval is not None:
            self._task = asyncio.create_task(self._run(self.interval), name=f"pusher {self.url}")

    async def stop(self) -> None:
        """Stop pushing: abandon retries, finish a push in flight, push once more, close."""
        session, stopping, task = self._session, self._stopping, self._task
        if session is None or stopping is None:
            return
        stopping.set()
        if task is not None:
            await task
        try:
            if self.push_on_stop:
                try:
                    await self._attempt(session, await asyncio.to_thread(self.body))
                except _Retryable as failure:
                    _log.error("last push on stop to %s failed with %s", self.url, failure.outcome)
                except PushRejected as error:
                    _log.error("last push on stop failed: %s", error)
        finally:
            self._session = self._stopping = self._task = None
            await session.close()

    async def push(self) -> None:
        """Push what the registry holds now; retry as described above.

        Raises :class:`PushRejected` or :class:`PushFailed` (after logging
        it) when the push does not get through.
        """
        session, stopping = self._session, self._stopping
        if session is None or stopping is None:
            raise RuntimeError("start the pusher (async with, or start()) before pushing")
        # Collected in a worker thread, so a large registry does not stall the event loop.
        body = await asyncio.to_thread(self.body)
        backoff = self.min_backoff
        for attempt in range(1, self.max_retries + 2):
            try:
                await self._attempt(session, body)
                return
            except _Retryable as failure:
                if attempt > self.max_retries:
                    error = PushFailed(self.url, attempt, failure.outcome)
                    _log.error("%s", error)
                    raise error from None
                wait = backoff if failure.retry_after is None else min(failure.retry_after, self.max_backoff)
                _log.warning(
                    "remote write to %s failed with %s (attempt %d of %d); retrying in %.3fs",
                    self.url,
                    failure.outcome,
                    attempt,
                    self.max_retries + 1,
                    wait,
                )
                if await self.clock.wait(stopping, wait):
                    raise PushFailed(
                        self.url, attempt, f"{failure.outcome}, then the pusher stopped"
                    ) from None
                backoff = min(backoff * 2, self.max_backoff)
            except PushRejected as error:
                _log.error("%s", error)
                raise

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes) -> None:
        """One POST; raise :class:`PushRejected` or :class:`_Retryable` unless it got a 2xx."""
        try:
            async with session.post(
                self.url, data=body, headers=self._headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    _log.debug("pushed %d bytes to %s: HTTP %d", len(body), self.url, response.status)
                    return
                text = (await response.text(errors="replace"))[:_BODY_IN_ERRORS]
                if response.status == 429 or response.status >= 500:
                    outcome = f"HTTP {response.status} ({text!r})"
                    raise _Retryable(outcome, _retry_after(response.headers.get("Retry-After")))
                raise PushRejected(self.url, response.status, text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}", None) from exc

    async def _run(self, interval: float) -> None:
        assert self._stopping is not None
        clock = self.clock
        next_push = clock.now()
        while not self._stopping.is_set():
            try:
                await self.push()
            except PushError:
                pass  # logged by push(); the next push carries the totals
            except Exception:
                _log.exception("pushing to %s failed", self.url)
            # Keep to the schedule, but after a long push start again from now rather than burst.
            next_push = max(next_push + interval, clock.now())
            if await clock.wait(self._stopping, next_push - clock.now()):
                break


class _Retryable(Exception):
    """One attempt failed in a way a later one may not (5xx, 429, network, timeout)."""

    def __init__(self, outcome: str, retry_after: float | None) -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.retry_after = retry_after


def start_pusher(url: str, registry: Collector = REGISTRY, **options: Any) -> ServiceThread[Pusher]:
    """Run a :class:`Pusher` (same arguments) in a thread of its own; returns once started.

    ``.stop()`` on the result (or leaving its ``with`` block) stops it.
    """
    return ServiceThread(Pusher(url, registry, **options), name=f"pusher {url}")
