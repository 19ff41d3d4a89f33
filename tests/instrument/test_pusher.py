"""The pusher against a stub endpoint: the request, retries and backoff, giving up, stopping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from remote_storage.instrument import (
    Counter,
    Gauge,
    Histogram,
    Pusher,
    PushFailed,
    PushRejected,
    Registry,
    Summary,
)
from remote_storage.instrument.pusher import write_request
from remote_storage.protocol import snappy
from remote_storage.protocol.write import decode_v1
from remote_storage.storage import MetricType
from tests.support.net import free_port

TIMEOUT = 10.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Stub:
    """A remote-write endpoint answering with ``answers`` in turn (the last one repeats)."""

    answers: Sequence[tuple[int, dict[str, str]]]
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read(), time.monotonic()))
        status, headers = self.answers[min(len(self.received), len(self.answers)) - 1]
        return web.Response(
            status=status, headers=headers, text="" if status == 204 else f"stub says {status}"
        )


def run(
    answers: Sequence[int | tuple[int, dict[str, str]]], scenario: Callable[[str, Stub], Awaitable[None]]
) -> Stub:
    stub = Stub([(a, {}) if isinstance(a, int) else a for a in answers])

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/write", stub.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.wait_for(scenario(f"http://127.0.0.1:{port}/api/v1/write", stub), TIMEOUT)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return stub


def registry_with_data() -> Registry:
    registry = Registry()
    Counter("pushed_jobs", "Jobs done.", ["kind"], registry=registry).labels("backup").inc(3)
    Gauge("pushed_temperature", "Temperature.", unit="celsius", registry=registry).set(21.5)
    Histogram("pushed_latency_seconds", "Latency.", buckets=[1], registry=registry).observe(0.5)
    return registry


class FakeClock:
    """A :class:`~remote_storage.instrument.pusher.PushClock` that moves only when told.

    Every wait the pusher asks for is recorded in ``waits`` (and put in
    ``asked``, for a test to await). With ``stepped`` a wait lasts until
    :meth:`advance` (or the event); otherwise time jumps ahead at once.
    """

    def __init__(self, stepped: bool = False) -> None:
        self.time = 1000.0
        self.stepped = stepped
        self.waits: list[float] = []
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self._tick = asyncio.Event()

    def now(self) -> float:
        return self.time

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.asked.put_nowait(seconds)
        if event.is_set():
            return True
        if not self.stepped:
            self.time += max(seconds, 0.0)
            return False
        self._tick.clear()
        ticked, stopped = asyncio.ensure_future(self._tick.wait()), asyncio.ensure_future(event.wait())
        await asyncio.wait({ticked, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ticked.cancel()
        stopped.cancel()
        return event.is_set()

    def advance(self, seconds: float) -> None:
        self.time += seconds
        self._tick.set()


def fast_pusher(url: str, registry: Registry, **options: object) -> Pusher:
    settings: dict[str, object] = {
        "interval": None,
        "min_backoff": 0.02,
        "max_backoff": 0.05,
        "push_on_stop": False,
        **options,
    }
    return Pusher(url, registry, **settings)  # type: ignore[arg-type]


def test_request_is_remote_write_1_0_with_metadata() -> None:
    registry = registry_with_data()

    async def scenario(url: str, stub: Stub) -> None:
        async with fast_pusher(url, registry, labels={"job": "batch"}) as pusher:
            before = int(time.time() * 1000)
            await pusher.push()
            after = int(time.time() * 1000)
        [received] = stub.received
        assert received.headers["Content-Type"] == "application/x-protobuf"
        assert received.headers["Content-Encoding"] == "snappy"
        assert received.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
        request = decode_v1(snappy.decompress(received.body, 1 << 20))
        series = {str(s.labels): (list(s.timestamps), list(s.values)) for s in request.series}
        [stamp] = {t for timestamps, _ in series.values() for t in timestamps}
        assert before <= stamp <= after
        assert series == {
            '{__name__="pushed_jobs_total", job="batch", kind="backup"}': ([stamp], [3.0]),
            '{__name__="pushed_temperature_celsius", job="batch"}': ([stamp], [21.5]),
            '{__name__="pushed_latency_seconds_bucket", job="batch", le="1.0"}': ([stamp], [1.0]),
            '{__name__="pushed_latency_seconds_bucket", job="batch", le="+Inf"}': ([stamp], [1.0]),
            '{__name__="pushed_latency_seconds_count", job="batch"}': ([stamp], [1.0]),
            '{__name__="pushed_latency_seconds_sum", job="batch"}': ([stamp], [0.5]),
        }
        metadata = {m.family: (m.type, m.help, m.unit) for m in request.metadata}
        assert metadata == {
            "pushed_jobs": (MetricType.COUNTER, "Jobs done.", ""),
            "pushed_temperature_celsius": (MetricType.GAUGE, "Temperature.", "celsius"),
            "pushed_latency_seconds": (MetricType.HISTOGRAM, "Latency.", ""),
        }

    run([204], scenario)


def test_5xx_and_429_are_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_with_data()

    clock = FakeClock()

    async def scenario(url: str, stub: Stub) -> None:
        async with fast_pusher(url, registry, max_retries=5, clock=clock) as pusher:
            await pusher.push()

    caplog.set_level(logging.WARNING, logger="remote_storage.instrument.pusher")
    stub = run([500, 503, (429, {"Retry-After": "0"}), 429, 204], scenario)
    assert len(stub.received) == 5
    assert len({r.body for r in stub.received}) == 1  # a retry resends the same request
    # min_backoff, doubled, Retry-After: 0 honoured, doubled again and capped at max_backoff
    assert clock.waits == [0.02, 0.04, 0.0, 0.05]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert "HTTP 500" in warnings[0] and "attempt 1 of 6" in warnings[0]


def test_other_4xx_are_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_with_data()

    async def scenario(url: str, stub: Stub) -> None:
        async with fast_pusher(url, registry) as pusher:
            with pytest.raises(PushRejected) as caught:
                await pusher.push()
        assert caught.value.status == 400
        assert caught.value.body == "stub says 400"
        assert "not retried" in str(caught.value)

    stub = run([400, 204], scenario)
    assert len(stub.received) == 1
    assert any(r.levelno == logging.ERROR and "HTTP 400" in r.getMessage() for r in caplog.records)


def test_retries_are_bounded() -> None:
    registry = registry_with_data()

    async def scenario(url: str, stub: Stub) -> None:
        async with fast_pusher(url, registry, max_retries=2) as pusher:
            with pytest.raises(PushFailed) as caught:
                await pusher.push()
        assert caught.value.attempts == 3
        assert "HTTP 503" in caught.value.last

    stub = run([503], scenario)
    assert len(stub.received) == 3


def test_connection_errors_are_retried() -> None:
    async def scenario(url: str, stub: Stub) -> None:
        nowhere = f"http://127.0.0.1:{free_port()}/api/v1/write"
        async with fast_pusher(nowhere, registry_with_data(), max_retries=1) as pusher:
            with pytest.raises(PushFailed) as caught:
                await pusher.push()
        assert caught.value.attempts == 2
        assert "Connect" in caught.value.last

    run([204], scenario)


def test_pushes_every_interval_and_once_more_on_stop() -> None:
    registry = registry_with_data()
    counter = Counter("pushed_ticks", "Ticks.", registry=registry)

    async def scenario(url: str, stub: Stub) -> None:
        clock = FakeClock(stepped=True)
        pusher = fast_pusher(url, registry, interval=30, push_on_stop=True, clock=clock)
        await pusher.start()
        for push in range(1, 4):
            # Each periodic push is sent, then the pusher waits the interval on the clock.
            assert await clock.asked.get() == 30
            assert len(stub.received) == push
            if push < 3:
                clock.advance(30)
        counter.inc()
        await pusher.stop()
        await pusher.stop()  # twice is fine

    stub = run([204], scenario)
    assert len(stub.received) == 4  # three periodic pushes, then the last one
    requests = [decode_v1(snappy.decompress(r.body, 1 << 20)) for r in stub.received]
    stamps = [next(iter(r.series)).timestamps[0] for r in requests]
    assert stamps == sorted(stamps)
    ticks = [s.values[0] for s in requests[-1].series if s.labels.metric_name == "pushed_ticks_total"]
    assert ticks == [1.0]  # the last push carries the last value


def test_stop_abandons_retries_promptly(caplog: pytest.LogCaptureFixture) -> None:
    registry = registry_with_data()

    async def scenario(url: str, stub: Stub) -> None:
        clock = FakeClock(stepped=True)
        pusher = Pusher(url, registry, interval=60, min_backoff=5, max_backoff=5, max_retries=10, clock=clock)
        await pusher.start()
        assert await clock.asked.get() == 5  # the first push failed: backing off
        # The clock never moves: a stop that waited out the backoff, or retried, would hang here.
        await pusher.stop()

    stub = run([503], scenario)
    assert len(stub.received) == 2  # the periodic push and the last one, neither retried after stop
    assert any("last push on stop to" in r.getMessage() for r in caplog.records)


def test_extra_labels_do_not_override_the_series_own() -> None:
    registry = Registry()
    Gauge("g", "G.", ["instance"], registry=registry).labels("own").set(1)
    Gauge("h", "H.", registry=registry).set(2)
    series, _ = write_request(registry.collect(), {"instance": "pusher", "job": "batch"}, 1000)
    assert sorted(str(s.labels) for s in series) == [
        '{__name__="g", instance="own", job="batch"}',
        '{__name__="h", instance="pusher", job="batch"}',
    ]


def test_every_type_becomes_series_and_metadata() -> None:
    registry = Registry()
    Summary("s", "S.", quantiles=[0.5], registry=registry).observe(1)
    series, metadata = write_request(registry.collect(), {}, 1000)
    assert [str(s.labels) for s in series] == [
        '{__name__="s", quantile="0.5"}',
        '{__name__="s_count"}',
        '{__name__="s_sum"}',
    ]
    assert [(m.family, m.type) for m in metadata] == [("s", MetricType.SUMMARY)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "localhost:9201/api/v1/write"}, "http:// or https://"),
        ({"interval": 0}, "interval"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"min_backoff": 0}, "min_backoff"),
        ({"min_backoff": 2, "max_backoff": 1}, "min_backoff <= max_backoff"),
    ],
)
def test_bad_settings_fail_at_once(options: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"url": "http://127.0.0.1:9201/api/v1/write", **options}
    url = settings.pop("url")
    with pytest.raises(ValueError, match=message):
        Pusher(url, Registry(), **settings)  # type: ignore[arg-type]


def test_push_needs_a_started_pusher() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="start the pusher"):
            await Pusher("http://127.0.0.1:1/api/v1/write", Registry()).push()

    asyncio.run(main())
