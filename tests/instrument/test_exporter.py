"""The /metrics exporter: one-line start, content negotiation, compression, graceful shutdown."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from remote_storage.instrument import (
    CONTENT_TYPE_LATEST,
    CONTENT_TYPE_OPENMETRICS,
    Counter,
    MetricFamily,
    MetricsExporter,
    Registry,
    Sample,
    ServiceThread,
    serve,
    start_metrics_server,
)
from tests.instrument.test_exposition import PROMETHEUS_2_ACCEPT
from tests.support.net import free_port, poll_until
from tests.support.procs import Processes

TIMEOUT = 10.0


def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    Counter("jobs", "Jobs done.", ["kind"], registry=registry).labels('a"b').inc(3)
    return registry


@pytest.fixture
def server(registry: Registry) -> Iterator[ServiceThread[MetricsExporter]]:
    with start_metrics_server(f"127.0.0.1:{free_port()}", registry) as running:
        yield running


def test_serves_text_0_0_4_by_default(server: ServiceThread[MetricsExporter]) -> None:
    status, headers, body = fetch(server.service.url)
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    [family] = parse_text(body.decode())
    assert [(s.name, s.labels, s.value) for s in family.samples] == [("jobs_total", {"kind": 'a"b'}, 3.0)]


def test_serves_openmetrics_to_prometheus(server: ServiceThread[MetricsExporter]) -> None:
    status, headers, body = fetch(server.service.url, {"Accept": PROMETHEUS_2_ACCEPT})
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE_OPENMETRICS
    [family] = parse_openmetrics(body.decode())
    assert [s.name for s in family.samples] == ["jobs_total", "jobs_created"]


def test_compresses_when_asked(server: ServiceThread[MetricsExporter]) -> None:
    status, headers, body = fetch(server.service.url, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"# HELP jobs_total")


def test_head_and_other_paths(server: ServiceThread[MetricsExporter]) -> None:
    status, _, body = fetch(server.service.url, method="HEAD")
    assert (status, body) == (200, b"")
    base = server.service.url.removesuffix("/metrics")
    assert fetch(base + "/other")[0] == 404
    assert fetch(server.service.url, method="POST")[0] == 405


def test_stop_closes_the_port(registry: Registry) -> None:
    port = free_port()
    server = start_metrics_server(f"127.0.0.1:{port}", registry, path="/custom")
    assert server.service.port == port
    assert fetch(f"http://127.0.0.1:{port}/custom")[0] == 200
    server.stop()
    with pytest.raises(urllib.error.URLError):
        fetch(f"http://127.0.0.1:{port}/custom")
    server.stop()  # twice is fine


def test_port_zero_picks_a_free_port(registry: Registry) -> None:
    with start_metrics_server("127.0.0.1:0", registry) as server:
        assert server.service.port != 0
        assert fetch(server.service.url)[0] == 200


def test_bad_settings_fail_at_once(registry: Registry) -> None:
    with pytest.raises(ValueError, match="invalid listen address"):
        MetricsExporter("localhost", registry)
    with pytest.raises(ValueError, match="must start with '/'"):
        MetricsExporter("127.0.0.1:0", registry, path="metrics")
    with start_metrics_server("127.0.0.1:0", registry) as server, pytest.raises(OSError):
        start_metrics_server(f"127.0.0.1:{server.service.port}", registry)  # the port is taken


def test_scrape_in_progress_finishes_when_stopping() -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def collect(self) -> list[MetricFamily]:
            entered.set()
            release.wait(TIMEOUT)
            return [MetricFamily("slow", "gauge", "Slow.", samples=[Sample("slow", {}, 1.0)])]

        def describe(self) -> list[MetricFamily]:
            return []

    registry = Registry()
    registry.register(Slow())
    server = start_metrics_server("127.0.0.1:0", registry)
    results: list[tuple[int, dict[str, str], bytes]] = []
    scrape = threading.Thread(target=lambda: results.append(fetch(server.service.url)))
    scrape.start()
    assert entered.wait(TIMEOUT)
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    release.set()
    scrape.join(TIMEOUT)
    stopping.join(TIMEOUT)
    assert not stopping.is_alive()
    [(status, _, body)] = results
    assert status == 200
    assert b"slow 1.0" in body


def test_serve_until_a_future_completes(registry: Registry) -> None:
    async def main() -> None:
        exporter = MetricsExporter("127.0.0.1:0", registry)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(serve(exporter, until=done, signals=()))

        await asyncio.to_thread(
            poll_until, lambda: exporter._runner is not None or None, TIMEOUT, "listening"
        )
        status, _, _ = await asyncio.to_thread(fetch, exporter.url)
        assert status == 200
        done.set_result(None)
        await asyncio.wait_for(serving, TIMEOUT)
        assert exporter._runner is None

    asyncio.run(main())


def test_async_context_manager(registry: Registry) -> None:
    async def main() -> None:
        async with MetricsExporter("127.0.0.1:0", registry) as exporter:
            status, _, body = await asyncio.to_thread(fetch, exporter.url)
            assert status == 200 and b"jobs_total" in body

    asyncio.run(main())


SERVE_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from remote_storage.instrument import MetricsExporter, Registry, Counter, serve

registry = Registry()
Counter("up_seconds", "Up.", registry=registry).inc()

class Announcing(MetricsExporter):
    async def start(self):
        await super().start()
        print("listening", flush=True)

    async def stop(self):
        await super().stop()
        print("stopped gracefully", flush=True)

asyncio.run(serve(Announcing({listen!r}, registry)))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_gracefully_on_a_signal(
    processes: Processes, tmp_path: Path, signum: signal.Signals
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT.format(root=str(Path(__file__).resolve().parents[2]), listen=listen))
    process = processes.start("exporter", [sys.executable, str(script)])

    def listening() -> bool | None:
        process.check_alive()
        return "listening" in process.log_text() or None

    poll_until(listening, TIMEOUT, "the exporter to listen")
    assert fetch(f"http://{listen}/metrics")[0] == 200
    os.kill(process.pid, signum)
    assert process.wait(TIMEOUT) == 0
    assert "stopped gracefully" in process.log_text()
