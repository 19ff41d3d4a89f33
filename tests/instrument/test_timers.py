"""Timers, in-progress tracking and exception counting: blocks, functions and coroutines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from remote_storage.instrument import Gauge, Histogram, Registry, Summary, timers


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(timers, "perf_counter", fake)
    yield fake


@pytest.fixture
def registry() -> Registry:
    return Registry()


def test_timer_as_a_context_manager(registry: Registry, clock: FakeClock) -> None:
    histogram = Histogram("job_seconds", "Job.", buckets=[1, 10], registry=registry)
    with histogram.time() as timer:
        clock.now += 2.5
    assert timer.duration == 2.5
    assert registry.get_sample_value("job_seconds_sum") == 2.5
    assert registry.get_sample_value("job_seconds_bucket", {"le": "10.0"}) == 1.0


def test_timer_records_a_block_that_raises(registry: Registry, clock: FakeClock) -> None:
    summary = Summary("job_seconds", "Job.", registry=registry)
    with pytest.raises(RuntimeError), summary.time():
        clock.now += 1
        raise RuntimeError
    assert registry.get_sample_value("job_seconds_sum") == 1.0


def test_timer_as_a_decorator_times_each_call(registry: Registry, clock: FakeClock) -> None:
    histogram = Histogram("job_seconds", "Job.", registry=registry)

    @histogram.time()
    def job(seconds: float) -> str:
        """Does the job."""
        clock.now += seconds
        if seconds > 5:
            raise ValueError("too long")
        return "done"

    assert job(1) == "done"
    assert job(2) == "done"
    with pytest.raises(ValueError, match="too long"):
        job(7)
    assert job.__name__ == "job"
    assert job.__doc__ == "Does the job."
    assert registry.get_sample_value("job_seconds_count") == 3.0
    assert registry.get_sample_value("job_seconds_sum") == 10.0


def test_timer_decorates_coroutine_functions(registry: Registry, clock: FakeClock) -> None:
    histogram = Histogram("job_seconds", "Job.", registry=registry)

    @histogram.time()
    async def job(seconds: float) -> float:
        await asyncio.sleep(0)
        clock.now += seconds
        return seconds

    async def main() -> list[float]:
        async with histogram.time():
            clock.now += 0.5
        return list(await asyncio.gather(job(1), job(2), job(3)))

    assert asyncio.iscoroutinefunction(job)
    assert asyncio.run(main()) == [1, 2, 3]
    assert registry.get_sample_value("job_seconds_count") == 4.0
    # The calls overlap on the fake clock, so each one's duration includes the others' advances;
    # what matters is that each call was timed once.
    assert (registry.get_sample_value("job_seconds_sum") or 0) >= 6.5


def test_decorated_function_runs_in_many_threads_at_once(registry: Registry) -> None:
    histogram = Histogram("job_seconds", "Job.", registry=registry)
    barrier = threading.Barrier(4)

    @histogram.time()
    def job() -> None:
        barrier.wait(timeout=10)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert registry.get_sample_value("job_seconds_count") == 4.0


def test_gauge_time_sets_the_duration(registry: Registry, clock: FakeClock) -> None:
    gauge = Gauge("last_job_seconds", "Last job.", registry=registry)
    with gauge.time():
        clock.now += 3
    assert registry.get_sample_value("last_job_seconds") == 3.0


def test_track_inprogress(registry: Registry) -> None:
    gauge = Gauge("in_progress", "In progress.", registry=registry)
    seen: list[float | None] = []

    @gauge.track_inprogress()
    def work() -> None:
        seen.append(registry.get_sample_value("in_progress"))
        raise KeyError

    @gauge.track_inprogress()
    async def async_work() -> None:
        seen.append(registry.get_sample_value("in_progress"))

    async def main() -> None:
        async with gauge.track_inprogress():
            await async_work()

    with gauge.track_inprogress(), pytest.raises(KeyError):
        work()
    asyncio.run(main())
    assert seen == [2.0, 2.0]
    assert registry.get_sample_value("in_progress") == 0.0
