"""Request bodies rendered ahead of sending, in a bounded buffer.

:meth:`BodySource.prepare` renders bodies until the buffer holds
``memory_limit`` bytes of compressed bodies or the run's every request, and
only then does sending (and the measured window) start. A render thread
keeps refilling the buffer while the run drains it, so a run longer than
the buffer keeps its memory bounded: later requests are rendered from the
same templates with the next scrapes' timestamps and values (a struct pack
and a snappy compression, well under a millisecond per 2,000-series
request). :attr:`GenerationStats.waited_seconds` says whether senders ever
waited for a body, which is when the generator would limit the offered load.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from remote_storage.loadgen.report import GenerationStats
from remote_storage.loadgen.workload import Batch, Workload

__all__ = ["BodySource"]


class BodySource:
    """Hands out the bodies of requests ``0, 1, 2, ...`` (``count`` of them, or without end) in order.

    >>> async def first_body(workload):  # doctest: +SKIP
    ...     async with BodySource(workload, count=10, memory_limit=64 << 20) as source:
    ...         await source.prepare()
    ...         return await source.next()
    """

    def __init__(self, workload: Workload, count: int | None, memory_limit: int) -> None:
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if memory_limit < 1:
            raise ValueError(f"memory_limit must be positive, got {memory_limit}")
        self._workload = workload
        self._count = count
        self._limit = memory_limit
        self._queue: deque[Batch] = deque()
        self._bytes = 0
        self._done = False
        self._preparing = True
        self._available = asyncio.Event()
        self._space = asyncio.Event()
        self._ready = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loadgen-render")
        self._producer: asyncio.Task[None] | None = None
        self._starved_since: float | None = None  # when senders last found the buffer empty
        self.stats = GenerationStats()

    async def __aenter__(self) -> BodySource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _indices(self) -> Iterator[int]:
        return iter(range(self._count)) if self._count is not None else itertools.count()

    async def prepare(self) -> None:
        """Start rendering; return once the buffer is full or every body is rendered."""
        if self._producer is not None:
            raise RuntimeError("prepare() was already called")
        started = time.perf_counter()
        self._producer = asyncio.create_task(self._produce(), name="loadgen-render")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait([ready, self._producer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._producer.done():
            self._producer.result()  # raise what rendering raised
        self._preparing = False
        stats = self.stats
        stats.ahead_seconds = time.perf_counter() - started
        stats.ahead_requests = len(self._queue)
        stats.ahead_samples = sum(batch.samples for batch in self._queue)
        stats.ahead_bytes = self._bytes

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for index in self._indices():
                while self._bytes >= self._limit and self._queue:
                    self._ready.set()
                    self._space.clear()
                    await self._space.wait()
                batch = await loop.run_in_executor(self._executor, self._workload.batch, index)
                if not self._preparing:
                    self.stats.during_run_requests += 1
                self._queue.append(batch)
                self._bytes += len(batch.body)
                self._available.set()
                if self._starved_since is not None:
                    self.stats.waited_seconds += time.perf_counter() - self._starved_since
                    self._starved_since = None
        finally:
            self._done = True
            self._ready.set()
            self._available.set()

    async def next(self) -> Batch | None:
        """The next body in order; None once all are handed out or the source is closed."""
        while not self._queue:
            if self._done:
                if self._producer is not None and self._producer.done() and not self._producer.cancelled():
                    self._producer.result()  # a render error ends the run with that error
                return None
            if self._starved_since is None:
                self._starved_since = time.perf_counter()
            self._available.clear()
            await self._available.wait()
        batch = self._queue.popleft()
        self._bytes -= len(batch.body)
        self._space.set()
        return batch

    async def close(self) -> None:
        """Stop rendering and drop what was not handed out; :meth:`next` returns None from now on."""
        if self._producer is not None:
            if not self._producer.done():
                self._producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._producer
            elif not self._producer.cancelled():
                self._producer.exception()  # reported by prepare() or next() if anyone was waiting
        self._done = True
        self._queue.clear()
        self._bytes = 0
        self._available.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
