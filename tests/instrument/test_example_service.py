"""The example service (examples/instrumented_service.py) run as a user would run it."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from tests.instrument.conftest import ExampleService
from tests.instrument.test_exposition import PROMETHEUS_2_ACCEPT

TIMEOUT = 10.0


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def metric_values(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, body = get(f"{url}/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_requests_are_counted_by_route_and_status_class(
    example_service: Callable[[], ExampleService],
) -> None:
    service = example_service()
    assert get(f"{service.url}/hello/you") == (200, b"Hello, you!\n")
    assert get(f"{service.url}/")[0] == 200
    assert get(f"{service.url}/error")[0] == 500
    assert get(f"{service.url}/missing")[0] == 404
    assert get(f"{service.url}/slow?seconds=0.05")[0] == 200
    assert get(f"{service.url}/slow?seconds=x")[0] == 400
    values = metric_values(service.url)
    assert values["example_http_requests_total", (("method", "GET"), ("route", "/hello/{name}"))] == 1
    assert values["example_http_requests_total", (("method", "GET"), ("route", "unmatched"))] == 1
    assert values["example_http_responses_total", (("code_class", "2xx"),)] == 3 + 1  # and /metrics
    assert values["example_http_responses_total", (("code_class", "4xx"),)] == 2
    assert values["example_http_responses_total", (("code_class", "5xx"),)] == 1
    assert values["example_http_responses_total", (("code_class", "3xx"),)] == 0
    assert values["example_http_request_duration_seconds_count", (("route", "/slow"),)] == 2
    slow = values["example_http_request_duration_seconds_sum", (("route", "/slow"),)]
    assert 0.05 <= slow < TIMEOUT
    assert values["example_http_requests_in_progress", ()] == 1  # the scrape itself
    assert values["example_connected_clients", ()] >= 1
    assert values["example_build_info", (("version", "1.0.0"),)] == 1
    assert values["process_open_fds", ()] > 0


def test_metrics_in_openmetrics_for_prometheus(example_service: Callable[[], ExampleService]) -> None:
    service = example_service()
    status, body = get(f"{service.url}/metrics", {"Accept": PROMETHEUS_2_ACCEPT})
    assert status == 200
    families = {family.name: family for family in parse_openmetrics(body.decode())}
    assert families["example_build"].type == "info"
    assert families["example_http_requests"].type == "counter"
    assert families["process_cpu_seconds"].unit == "seconds"


def test_stops_gracefully_on_sigterm(example_service: Callable[[], ExampleService]) -> None:
    service = example_service()
    os.kill(service.process.pid, signal.SIGTERM)
    assert service.process.wait(TIMEOUT) == 0
    assert "stopped" in service.process.log_text()
