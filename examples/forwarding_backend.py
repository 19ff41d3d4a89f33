"""A backend that forwards every write to another remote-write endpoint.

Run it in front of any remote-write receiver (a Prometheus started with
``--web.enable-remote-write-receiver``, Mimir, another remote-storage)::

    python examples/forwarding_backend.py --listen 127.0.0.1:9201 \\
        --target http://127.0.0.1:9090/api/v1/write

What it promises, and how:

* **Acknowledged means accepted by the target.** ``write`` encodes the
  request (remote write 1.0, snappy), puts it on a bounded queue and waits
  until a sender task has delivered it: the service answers 204 only after
  the target answered 2xx, so the data is as durable as the target makes it.
* **Bounded queue, back-pressure as 503.** At most ``--queue-size`` requests
  wait; one more is refused with ``StorageUnavailable`` (503), which
  Prometheus retries with its own backoff instead of piling up memory here.
* **Retries with backoff.** A connection error, a timeout, 429 or 5xx from
  the target is retried after 50 ms, 100 ms, ... up to ``--max-backoff``,
  ``--attempts`` times in all; then the request fails with 503 and the
  sender retries it later. A retry may deliver a request twice; remote-write
  receivers store a sample they already hold once.
* **The target's refusals are passed on as 400.** A 4xx other than 429 would
  fail again however often it is sent, so it becomes ``InvalidRequest``
  (400) with the target's message, and the sender drops the request.
* **No reads.** Nothing is stored here: remote read is refused with 400,
  naming the target to read from.

A forwarder speaks the wire protocol, so unlike a storage backend it uses
the service's encoder (``remote_storage.protocol``), as the metrics pusher does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remote_storage import Context, Query, RemoteStorage, TimeSeries, WriteRequest
from remote_storage.errors import InvalidRequest, RemoteStorageError, StorageUnavailable
from remote_storage.protocol.snappy import compress
from remote_storage.protocol.write import encode_v1

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "remote-storage-forwarder",
}


@dataclass
class _Delivery:
    body: bytes
    tenant: str
    done: asyncio.Future[RemoteStorageError | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ForwardingStorage(RemoteStorage):
    """Forward writes to ``target`` (a remote-write URL); see the module docstring.

    ``tenant_header`` (e.g. ``X-Scope-OrgID``) carries a request's tenant to
    the target when set; tenants other than the default are refused without it.
    """

    def __init__(
        self,
        target: str,
        *,
        queue_size: int = 64,
        senders: int = 2,
        attempts: int = 8,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        timeout: float = 30.0,
        tenant_header: str | None = None,
    ) -> None:
        if urlsplit(target).scheme not in ("http", "https"):
            raise ValueError(f"target must be an http(s) URL, got {target!r}")
        if queue_size < 1 or senders < 1 or attempts < 1:
            raise ValueError("queue_size, senders and attempts must be >= 1")
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self.target = target
        self.queue_size = queue_size
        self.senders = senders
        self.attempts = attempts
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.tenant_header = tenant_header
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue(queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._tasks = [asyncio.create_task(self._send_loop()) for _ in range(self.senders)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().done.set_result(StorageUnavailable("the forwarder is shutting down"))
        if self._session is not None:
            await self._session.close()

    @property
    def queued(self) -> int:
        """Requests waiting for a sender."""
        return self._queue.qsize()

    def describe(self) -> str:
        return f"forwarding to {self.target} (queue {self.queue_size}, {self.senders} senders)"

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        if ctx.tenant != "default" and self.tenant_header is None:
            raise InvalidRequest(f"tenant {ctx.tenant!r}: this forwarder has no tenant header to pass it on")
        if not request.series and not request.metadata:
            return
        delivery = _Delivery(compress(encode_v1(request.series, request.metadata)), ctx.tenant)
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            raise StorageUnavailable(
                f"forwarding queue full ({self.queue_size} requests waiting for {self.target}); retry later"
            ) from None
        error = await asyncio.shield(delivery.done)  # a sender hanging up does not cancel the delivery
        if error is not None:
            raise error

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        raise InvalidRequest(f"this service forwards writes and keeps nothing: read from {self.target}")
        yield  # pragma: no cover - makes this an async generator

    async def _send_loop(self) -> None:
        while True:
            delivery = await self._queue.get()
            outcome = await self._deliver(delivery)
            if not delivery.done.done():
                delivery.done.set_result(outcome)

    async def _deliver(self, delivery: _Delivery) -> RemoteStorageError | None:
        """None once the target accepted the request, else the error to answer the sender with."""
        assert self._session is not None, "write before start"
        headers = dict(HEADERS)
        if self.tenant_header is not None:
            headers[self.tenant_header] = delivery.tenant
        backoff = self.min_backoff
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._session.post(self.target, data=delivery.body, headers=headers) as response:
                    if response.status < 300:
                        return None
                    text = (await response.text(errors="replace")).strip()[:300]
                    if 400 <= response.status < 500 and response.status != 429:
                        return InvalidRequest(
                            f"{self.target} refused the request with HTTP {response.status}: {text}"
                        )
                    last = f"HTTP {response.status}: {text}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, self.max_backoff)
        return StorageUnavailable(
            f"{self.target} did not accept the request in {self.attempts} attempts (last: {last})"
        )


def main(argv: Iterable[str] | None = None) -> None:
    from remote_storage.cli import run
    from remote_storage.config import Settings

    parser = argparse.ArgumentParser(description="Serve remote write and forward it to another endpoint.")
    parser.add_argument("--listen", default="127.0.0.1:9201", help="HOST:PORT to listen on")
    parser.add_argument("--target", required=True, help="remote-write URL to forward to")
    parser.add_argument("--queue-size", type=int, default=64, help="requests waiting at most (then 503)")
    parser.add_argument("--senders", type=int, default=2, help="concurrent deliveries to the target")
    parser.add_argument("--attempts", type=int, default=8, help="deliveries of one request before 503")
    parser.add_argument("--max-backoff", type=float, default=5.0, help="longest pause between attempts (s)")
    args = parser.parse_args(None if argv is None else list(argv))
    storage = ForwardingStorage(
        args.target,
        queue_size=args.queue_size,
        senders=args.senders,
        attempts=args.attempts,
        max_backoff=args.max_backoff,
    )
    run(storage, Settings(listen=args.listen))


if __name__ == "__main__":
    main()
