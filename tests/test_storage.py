"""The RemoteStorage base class and the types backends see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
    Labels,
    Query,
    ReadRequest,
    RemoteStorage,
    TimeSeries,
    WriteRequest,
)


class Concurrent(RemoteStorage):
    """Each query waits until every query of the request has started, then finishes in reverse order."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.started = 0
        self.all_started = asyncio.Event()
        self.finished = [asyncio.Event() for _ in range(expected)]
        self.finish_order: list[int] = []

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        raise NotImplementedError

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        self.started += 1
        if self.started == self.expected:
            self.all_started.set()
        await self.all_started.wait()
        index = query.start_ms
        if index + 1 < self.expected:
            await self.finished[index + 1].wait()  # later queries finish first
        yield TimeSeries(Labels([("__name__", f"q{index}")]), [index], [1.0])
        self.finish_order.append(index)
        self.finished[index].set()


def test_default_read_runs_queries_concurrently_and_keeps_their_order() -> None:
    queries = tuple(Query(i, i, (Matcher.parse("__name__", "=~", ".+"),)) for i in range(5))

    async def main() -> list[str]:
        storage = Concurrent(len(queries))
        async with asyncio.timeout(10):  # a sequential read would wait forever on the event
            results = await storage.read(Context(), ReadRequest(queries))
        assert storage.finish_order == [4, 3, 2, 1, 0]
        return [r.series[0].labels.metric_name for r in results]

    assert asyncio.run(main()) == ["q0", "q1", "q2", "q3", "q4"]


def test_labels() -> None:
    labels = Labels.from_mapping({"job": "api", "__name__": "up", "empty": ""})
    assert labels == Labels([("__name__", "up"), ("job", "api")])
    assert labels.get("missing") == ""
    assert labels.get("missing", "x") == "x"
    assert labels.as_dict() == {"__name__": "up", "job": "api"}
    assert str(Labels([("a", 'q"\\\n')])) == '{a="q\\"\\\\\\n"}'
    assert Labels([("a", "1")]) < Labels([("a", "2")]) < Labels([("b", "0")])
    assert {labels: 1}[Labels.from_mapping({"__name__": "up", "job": "api"})] == 1


def test_time_series_lazy_labels_and_equality() -> None:
    calls = []

    def decode() -> Labels:
        calls.append(1)
        return Labels([("__name__", "up")])

    lazy = TimeSeries.lazy(b"key", decode, [1], [2.0])
    assert calls == []
    assert lazy.key == b"key"
    assert lazy == TimeSeries(Labels([("__name__", "up")]), [1], [2.0])
    assert lazy.labels.metric_name == "up"
    assert calls == [1]
    assert list(lazy.samples()) == [(1, 2.0)]
    nan = float("nan")
    assert TimeSeries(Labels(), [1], [nan]) == TimeSeries(Labels(), [1], [nan])  # compared by bits
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        TimeSeries(Labels(), [1, 2], [1.0])


def test_context_remaining() -> None:
    assert Context().remaining() is None
    assert Context(deadline=0.0).remaining() == 0.0
