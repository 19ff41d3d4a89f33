"""The in-memory backend off the event loop: large writes and query selections in threads, under one lock."""

from __future__ import annotations

import asyncio
import time

import pytest

from remote_storage.backends import memory
from remote_storage.backends.memory import MemoryStorage
from remote_storage.matchers import Matcher
from remote_storage.storage import Context, Labels, Query, TimeSeries, WriteRequest
from remote_storage.testing import BackendConformance


class TestMemoryConformanceInThreads(BackendConformance):
    """The whole conformance suite with every write and every selection taking the thread path."""

    @pytest.fixture(autouse=True)
    def _everything_in_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(memory, "_INLINE_WRITE_SAMPLES", -1)
        monkeypatch.setattr(memory, "_INLINE_MATCH_SECONDS", -1.0)
        monkeypatch.setattr(memory, "_INLINE_CANDIDATES", -1)

    def make_storage(self) -> MemoryStorage:
        return MemoryStorage()


def _series(count: int, timestamp: int) -> list[TimeSeries]:
    return [
        TimeSeries(Labels((("__name__", "m"), ("i", f"v{i:06d}"))), [timestamp], [float(i)])
        for i in range(count)
    ]


def test_a_large_write_is_atomic_for_concurrent_queries() -> None:
    """Queries running while a 60,000-series write is stored see none of it or all of it."""
    count = 60_000
    storage = MemoryStorage()
    query = Query(0, 10_000, (Matcher.parse("__name__", "=", "m"),))

    async def scenario() -> list[int]:
        await storage.write(Context(), WriteRequest(_series(count, 1000)))
        write = asyncio.ensure_future(storage.write(Context(), WriteRequest(_series(count, 2000))))
        seen: list[int] = []
        for _ in range(200):  # bounded; stops once the write is done
            found = [s async for s in storage.process_query(Context(), query)]
            assert len(found) == count
            seen.append(sum(len(s.timestamps) for s in found))
            if write.done():
                break
        await write
        await storage.close()
        return seen

    seen = asyncio.run(scenario())
    assert set(seen) <= {count, 2 * count}
    assert storage.sample_count() == 2 * count


def test_regex_selection_stops_at_the_deadline() -> None:
    """A hostile regex over many label values runs in a thread that gives up at the query's deadline."""
    storage = MemoryStorage()
    query = Query(0, 10_000, (Matcher.parse("i", "=~", "(.*){1000}"),))

    async def scenario() -> float:
        await storage.write(Context(), WriteRequest(_series(30_000, 1000)))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async for _ in storage.process_query(Context(deadline=started + 0.3), query):
                pass
        return time.monotonic() - started

    # Testing all 30,000 values takes some 36 s; the deadline ends it after a few hundred.
    assert asyncio.run(scenario()) < 10
