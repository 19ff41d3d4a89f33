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

    unsupported = frozenset({"durability"})  # the memory backend keeps nothing across a restart

    @pytest.fixture(autouse=True)
    def _everything_in_threads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(memory, "_INLINE_WRITE_SAMPLES", -1)
        monkeypatch.setattr(memory, "_INLINE_MATCH_SECONDS", -1.0)
        monkeypatch.setattr(memory, "_INLINE_CANDIDATES", -1)

    def make_storage(self) -> MemoryStorage:
        return MemoryStorage()


def _series(count: int, *timestamps: int) -> list[TimeSeries]:
    return [
        TimeSeries(
            Labels((("__name__", "m"), ("i", f"v{i:06d}"))), list(timestamps), [float(i)] * len(timestamps)
        )
        for i in range(count)
    ]


def test_a_large_write_lands_at_one_instant_for_a_concurrent_query() -> None:
    """A 60,000-series write stored while a query runs is seen whole or not at all, series by series.

    A query reads its series in label order, a step at a time; the write,
    started once the query has read its first series, lands between two
    steps: the series read before hold none of its samples, those read after
    hold both, and the query itself is not held up by it.
    """
    count = 60_000
    storage = MemoryStorage()
    query = Query(0, 10_000, (Matcher.parse("__name__", "=", "m"),))

    async def scenario() -> list[int]:
        await storage.write(Context(), WriteRequest(_series(count, 1000)))
        write: asyncio.Future[None] | None = None
        sizes = []
        async for series in storage.process_query(Context(), query):
            sizes.append(len(series.timestamps))
            if write is None:
                write = asyncio.ensure_future(
                    storage.write(Context(), WriteRequest(_series(count, 2000, 3000)))
                )
        assert write is not None
        await write
        await storage.close()
        return sizes

    sizes = asyncio.run(scenario())
    assert len(sizes) == count
    assert set(sizes) == {1, 3}, "the write did not land during the query"
    assert sizes == sorted(sizes), "the write appeared in more than one place"
    assert storage.sample_count() == 3 * count


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
