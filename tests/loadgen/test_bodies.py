"""Bodies rendered ahead: in order, within the memory bound, refilled while the run drains them."""

from __future__ import annotations

import asyncio

import pytest

from remote_storage.loadgen.bodies import BodySource
from remote_storage.loadgen.runner import request_count
from remote_storage.loadgen.sender import Pacer, SendOptions
from remote_storage.loadgen.workload import Batch, Workload, WorkloadSpec

SPEC = WorkloadSpec(series=2_000, series_per_request=500, start_ms=1_700_000_000_000)


async def drain(source: BodySource) -> list[Batch]:
    batches = []
    while (batch := await source.next()) is not None:
        batches.append(batch)
    return batches


def test_all_bodies_fit_ahead() -> None:
    async def scenario() -> tuple[list[Batch], BodySource]:
        async with BodySource(Workload(SPEC), count=10, memory_limit=64 << 20) as source:
            await source.prepare()
            return await drain(source), source

    batches, source = asyncio.run(scenario())
    assert [b.index for b in batches] == list(range(10))
    reference = Workload(SPEC)
    assert [b.body for b in batches] == [reference.batch(i).body for i in range(10)]
    stats = source.stats
    assert (stats.ahead_requests, stats.ahead_samples, stats.during_run_requests) == (10, 5_000, 0)
    assert stats.ahead_bytes == sum(len(b.body) for b in batches)


def test_memory_bound_holds_and_the_rest_is_rendered_while_draining() -> None:
    body_size = len(Workload(SPEC).batch(0).body)
    limit = 3 * body_size

    async def scenario() -> tuple[list[Batch], BodySource]:
        async with BodySource(Workload(SPEC), count=12, memory_limit=limit) as source:
            await source.prepare()
            assert source.stats.ahead_requests < 12
            assert source.stats.ahead_bytes < limit + body_size * 2
            return await drain(source), source

    batches, source = asyncio.run(scenario())
    assert [b.index for b in batches] == list(range(12))
    assert source.stats.ahead_requests + source.stats.during_run_requests == 12


def test_without_a_count_bodies_keep_coming_until_closed() -> None:
    async def scenario() -> tuple[list[int], Batch | None]:
        source = BodySource(Workload(SPEC), count=None, memory_limit=1 << 20)
        await source.prepare()
        indices = [(await source.next()).index for _ in range(30)]  # type: ignore[union-attr]
        await source.close()
        return indices, await source.next()

    indices, after_close = asyncio.run(scenario())
    assert indices == list(range(30))
    assert after_close is None


def test_pacer_gives_way_to_stop() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        stop = asyncio.Event()
        unlimited = await Pacer(None).wait(2_000, stop)
        paced = Pacer(1.0)  # one sample per second: the second request would wait 2,000 s
        first = await paced.wait(2_000, stop)
        stop.set()
        second = await paced.wait(2_000, stop)
        return unlimited, first, second

    assert asyncio.run(scenario()) == (True, True, False)


@pytest.mark.parametrize(
    ("requests", "duration", "rate", "expected"),
    [
        (None, None, None, 4_000),
        (10, None, 1_000.0, 10),
        (None, 60.0, None, None),
        (None, 60.0, 20_000.0, 4 * 5),  # 1.2 M samples: 2.4 rounds of 500,000, rounded up, plus one
        (7, 60.0, 20_000.0, 7),
    ],
)
def test_request_count(
    requests: int | None, duration: float | None, rate: float | None, expected: int
) -> None:
    workload = Workload(WorkloadSpec(series=500_000, series_per_request=100_000, start_ms=1_700_000_000_000))
    options = SendOptions("http://127.0.0.1:1", requests=requests, duration=duration, rate=rate)
    assert request_count(workload, options) == expected
