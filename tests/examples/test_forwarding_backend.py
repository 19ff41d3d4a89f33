"""examples/forwarding_backend.py: real Prometheus in front and behind, then retries, refusals, a full queue.

End to end: Prometheus A scrapes a target and remote-writes to the
forwarder, which forwards to Prometheus B's remote-write receiver; B must
hold exactly A's samples. The other tests put the service (``create_app``)
in front of a target server in the test whose answers they script.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from forwarding_backend import ForwardingStorage

from remote_storage.matchers import Matcher
from remote_storage.protocol.snappy import decompress
from remote_storage.protocol.write import decode_v1
from remote_storage.server import create_app
from remote_storage.storage import WriteRequest
from tests.examples import scrape_and_write, start_example
from tests.support.net import Deadline, poll_until
from tests.support.procs import Processes
from tests.support.prometheus import (
    Prometheus,
    PrometheusConfig,
    diff_results,
    series_points,
)
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, series, v1_body

TEST_TIMEOUT = 120.0
TARGET = """\
# TYPE fw_value gauge
fw_value{kind="pi"} 3.141592653589793
fw_value{kind="nan"} NaN
# TYPE fw_requests_total counter
fw_requests_total{path="/"} 12345
"""


@pytest.mark.prometheus
def test_prometheus_to_forwarder_to_prometheus(
    processes: Processes, prometheus: Callable[..., Prometheus]
) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    receiver = prometheus("b", PrometheusConfig(), remote_write_receiver=True, timeout=deadline.remaining(30))
    target = f"{receiver.url}/api/v1/write"
    url, _ = start_example(processes, "forwarding_backend.py", "--target", target, deadline=deadline)
    writer, start, end = scrape_and_write(prometheus, TARGET, f"{url}/api/v1/write", deadline)
    raw = f'{{job="target"}}[{round((end - start) * 1000) + 1}ms]'
    expected = writer.query(raw, end)
    assert len(series_points(expected)) == 8, expected  # up, scrape_* and the target's three
    # B holds what A wrote once the forwarder delivered it (A sends within a second)
    poll_until(
        lambda: True if diff_results(expected, receiver.query(raw, end)) == [] else None,
        deadline.remaining(),
        "B to hold A's samples",
    )


def run(scenario: Callable[[], object]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


class ScriptedTarget:
    """A remote-write receiver answering each request with the next scripted status."""

    def __init__(self, statuses: list[int], release: asyncio.Event | None = None) -> None:
        self.statuses = statuses
        self.release = release
        self.received: list[WriteRequest] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(decode_v1(decompress(await request.read(), 1 << 24)))
        if self.release is not None:
            await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else 204
        return web.Response(status=status, text="" if status == 204 else f"scripted {status}")


@asynccontextmanager
async def forwarder_in_front_of(
    target: ScriptedTarget, **options: object
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], ForwardingStorage]]:
    app = web.Application()
    app.router.add_post("/api/v1/write", target.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        storage = ForwardingStorage(str(server.make_url("/api/v1/write")), **options)  # type: ignore[arg-type,unused-ignore]
        async with TestClient(TestServer(create_app(storage), host="127.0.0.1")) as client:
            yield client, storage


UP = series([1000, 2000], [1.0, 0.0], __name__="up", job="a")


def test_retries_until_the_target_accepts() -> None:
    async def scenario() -> None:
        target = ScriptedTarget([503, 500, 429])
        async with forwarder_in_front_of(target, min_backoff=0.01) as (client, _):
            response = await client.post("/api/v1/write", data=v1_body([UP]), headers=V1_HEADERS)
            assert response.status == 204, await response.text()
        assert len(target.received) == 4
        assert all(received.series == [UP] for received in target.received)

    run(scenario)


def test_gives_up_with_503_after_the_last_attempt() -> None:
    async def scenario() -> None:
        target = ScriptedTarget([503] * 3)
        async with forwarder_in_front_of(target, attempts=3, min_backoff=0.01) as (client, _):
            response = await client.post("/api/v1/write", data=v1_body([UP]), headers=V1_HEADERS)
            assert response.status == 503
            assert (
                "did not accept the request in 3 attempts (last: HTTP 503: scripted 503)"
                in await response.text()
            )
        assert len(target.received) == 3

    run(scenario)


def test_target_refusal_is_passed_on_as_400_without_retry() -> None:
    async def scenario() -> None:
        target = ScriptedTarget([400])
        async with forwarder_in_front_of(target, min_backoff=0.01) as (client, _):
            response = await client.post("/api/v1/write", data=v1_body([UP]), headers=V1_HEADERS)
            assert response.status == 400
            assert "refused the request with HTTP 400: scripted 400" in await response.text()
        assert len(target.received) == 1

    run(scenario)


def test_full_queue_answers_503_and_queued_requests_complete() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        target = ScriptedTarget([], release)
        async with forwarder_in_front_of(target, senders=1, queue_size=1) as (client, storage):

            async def send(value: float) -> int:
                body = v1_body([series([1000], [value], __name__="q")])
                response = await client.post("/api/v1/write", data=body, headers=V1_HEADERS)
                return response.status

            first = asyncio.create_task(send(1.0))  # taken by the only sender, held by the target
            await asyncio.wait_for(_until(lambda: len(target.received) == 1), 10)
            second = asyncio.create_task(send(2.0))  # waits in the queue
            await asyncio.wait_for(_until(lambda: storage.queued == 1), 10)
            assert await send(3.0) == 503  # no room
            release.set()
            assert list(await asyncio.wait_for(asyncio.gather(first, second), 10)) == [204, 204]
        assert [r.series[0].values[0] for r in target.received] == [1.0, 2.0]

    run(scenario)


def test_reads_are_refused_with_400() -> None:
    async def scenario() -> None:
        async with forwarder_in_front_of(ScriptedTarget([])) as (client, _):
            body = read_body((0, 1000, [Matcher.parse("__name__", "=", "up")]))
            response = await client.post("/api/v1/read", data=body, headers=READ_HEADERS)
            assert response.status == 400
            assert "forwards writes and keeps nothing: read from http://127.0.0.1:" in await response.text()

    run(scenario)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)
