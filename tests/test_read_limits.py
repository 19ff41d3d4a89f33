"""The read sample limits apply while answers are built, in both response types.

The backend here never stops producing series: only a limit that stops the
building can answer at all, and the count of series it produced shows that
the server stopped asking soon after the limit was passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from remote_storage.config import Settings
from remote_storage.matchers import Matcher
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.server import create_app
from remote_storage.storage import Context, Labels, Query, RemoteStorage, TimeSeries, WriteRequest
from tests.support.wire import READ_HEADERS, read_body

SAMPLES_PER_SERIES = 100
QUERY = (0, 10**9, [Matcher.parse("__name__", "=", "endless")])
STREAMED = (ResponseType.STREAMED_XOR_CHUNKS,)


class Endless(RemoteStorage):
    """Every query selects an unending sequence of series of 100 samples each."""

    def __init__(self) -> None:
        self.produced = 0

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        raise NotImplementedError

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        timestamps = list(range(0, SAMPLES_PER_SERIES * 1000, 1000))
        values = [float(i) for i in range(SAMPLES_PER_SERIES)]
        number = 0
        while True:
            number += 1
            self.produced += 1
            yield TimeSeries(Labels((("__name__", "endless"), ("n", f"{number:09d}"))), timestamps, values)
            if number % 64 == 0:
                await asyncio.sleep(0)


def run(storage: Endless, settings: Settings, body: bytes) -> tuple[int, str | BaseException]:
    """Status and text of the answer, or the exception reading it raised (status -1)."""

    async def main() -> tuple[int, str | BaseException]:
        async with TestClient(TestServer(create_app(storage, settings))) as client:
            response = await asyncio.wait_for(
                client.post("/api/v1/read", data=body, headers=READ_HEADERS), 30
            )
            try:
                data = await asyncio.wait_for(response.read(), 30)
            except aiohttp.ClientPayloadError as exc:
                return -1, exc
            return response.status, data.decode("utf-8", "replace")

    return asyncio.run(main())


def test_samples_answer_stops_at_the_query_limit() -> None:
    storage = Endless()
    status, text = run(storage, Settings(read_sample_limit=10_000), read_body(QUERY))
    assert status == 400
    assert "query 0 exceeded the sample limit of 10000" in str(text) and "--read-sample-limit" in str(text)
    assert storage.produced <= 10_000 // SAMPLES_PER_SERIES + 1


def test_samples_answer_stops_at_the_request_limit() -> None:
    """Three queries each under the per-query limit, together over the per-request one."""

    class Three(Endless):
        async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
            count = 0
            async for series in super().process_query(ctx, query):
                yield series
                count += 1
                if count == 40:  # 4,000 samples per query
                    return

    storage = Three()
    settings = Settings(read_sample_limit=5_000, read_request_sample_limit=10_000)
    status, text = run(storage, settings, read_body(QUERY, QUERY, QUERY))
    assert status == 400
    assert "sample limit of 10000" in str(text) and "--read-request-sample-limit" in str(text)
    assert storage.produced <= 10_000 // SAMPLES_PER_SERIES + 3


def test_streamed_answer_over_the_limit_before_any_byte_is_sent_gets_400() -> None:
    storage = Endless()
    status, text = run(storage, Settings(read_sample_limit=1_000), read_body(QUERY, accepted=STREAMED))
    assert status == 400
    assert "--read-sample-limit" in str(text)


@pytest.mark.parametrize("limit", [200_000, 2_000_000])
def test_streamed_answer_over_the_limit_after_bytes_were_sent_is_cut_off(limit: int) -> None:
    """The answer had begun (status 200, frames sent), so the reader sees a truncated stream; the server
    stopped producing soon after the limit."""
    storage = Endless()
    status, error = run(storage, Settings(read_sample_limit=limit), read_body(QUERY, accepted=STREAMED))
    assert status == -1, error
    assert isinstance(error, aiohttp.ClientPayloadError)
    assert limit // SAMPLES_PER_SERIES < storage.produced <= limit // SAMPLES_PER_SERIES + 200


def test_streamed_read_timeout_after_bytes_were_sent_cuts_the_stream() -> None:
    storage = Endless()
    settings = Settings(read_sample_limit=0, read_timeout=0.5)
    status, error = run(storage, settings, read_body(QUERY, accepted=STREAMED))
    assert status == -1 and isinstance(error, aiohttp.ClientPayloadError), error


def test_limits_are_off_at_zero_for_finite_answers() -> None:
    class Finite(Endless):
        async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
            count = 0
            async for series in super().process_query(ctx, query):
                yield series
                count += 1
                if count == 300:
                    return

    status, _ = run(Finite(), Settings(read_sample_limit=0, read_request_sample_limit=0), read_body(QUERY))
    assert status == 200
