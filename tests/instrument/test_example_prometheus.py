"""Integration: a real Prometheus scrapes the example service and the adapter, and writes to the adapter.

Prometheus (which asks for OpenMetrics first) scrapes both every second and
remote-writes what it scraped to the adapter; the test reads the series
back from the adapter with remote read.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from remote_storage.storage import TimeSeries
from tests.instrument.conftest import ExampleService
from tests.instrument.remote import label_is, name_matches, remote_read
from tests.support.adapter import Adapter
from tests.support.net import Deadline, poll_until
from tests.support.prometheus import Prometheus, PrometheusConfig, remote_write_to, scrape_job

pytestmark = pytest.mark.prometheus

TEST_TIMEOUT = 90.0

# Series of the example that must arrive, by name and the labels that identify them.
EXPECTED_EXAMPLE = [
    ("up", {}),
    ("example_http_requests_total", {"route": "/hello/{name}", "method": "GET"}),
    ("example_http_responses_total", {"code_class": "2xx"}),
    ("example_http_responses_total", {"code_class": "4xx"}),
    ("example_http_responses_total", {"code_class": "5xx"}),
    ("example_http_request_duration_seconds_bucket", {"route": "/hello/{name}", "le": "+Inf"}),
    ("example_http_request_duration_seconds_count", {"route": "/error"}),
    ("example_http_requests_in_progress", {}),
    ("example_connected_clients", {}),
    ("example_build_info", {"version": "1.0.0"}),
    ("process_cpu_seconds_total", {}),
    ("process_resident_memory_bytes", {}),
]
EXPECTED_ADAPTER = [
    ("up", {}),
    ("remote_storage_write_requests_total", {"version": "1.0"}),
    ("remote_storage_http_requests_total", {"handler": "write", "code": "204"}),
]


def missing(series: list[TimeSeries], expected: list[tuple[str, dict[str, str]]]) -> list[str]:
    labels = [s.labels.as_dict() for s in series]
    return [
        f"{name}{wanted}"
        for name, wanted in expected
        if not any(found.get("__name__") == name and wanted.items() <= found.items() for found in labels)
    ]


def last_value(series: list[TimeSeries], name: str, **wanted: str) -> float:
    [match] = [
        s for s in series if s.labels.metric_name == name and wanted.items() <= s.labels.as_dict().items()
    ]
    return float(match.values[-1])


def test_prometheus_scrapes_the_example_and_the_adapter_into_the_adapter(
    adapter: Callable[..., Adapter],
    prometheus: Callable[..., Prometheus],
    example_service: Callable[[], ExampleService],
) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    storage = adapter("memory://", timeout=deadline.remaining(30))
    example = example_service()
    for path in ["/", "/hello/prometheus", "/hello/again", "/error", "/missing"]:
        try:
            urllib.request.urlopen(f"{example.url}{path}", timeout=10).close()
        except urllib.error.HTTPError as exc:
            exc.close()
    prometheus(
        "scraper",
        PrometheusConfig(
            scrape_interval="1s",
            scrape_configs=[scrape_job("example", example.address), scrape_job("adapter", storage.address)],
            remote_write=[remote_write_to(storage.write_url)],
        ),
        timeout=deadline.remaining(30),
    )

    def arrived(job: str, pattern: str, expected: list[tuple[str, dict[str, str]]]) -> list[TimeSeries]:
        series = remote_read(storage.read_url, label_is("job", job), name_matches(pattern))
        absent = missing(series, expected)
        assert not absent, f"not yet in the adapter: {absent}"
        return series

    example_series = poll_until(
        lambda: arrived("example", "example_.*|process_.*|up", EXPECTED_EXAMPLE),
        deadline.remaining(60),
        "the example's series to reach the adapter",
        interval=0.5,
    )
    adapter_series = poll_until(
        lambda: arrived("adapter", "remote_storage_.*|up", EXPECTED_ADAPTER),
        deadline.remaining(),
        "the adapter's own series to reach the adapter",
        interval=0.5,
    )
    assert last_value(example_series, "up") == 1.0  # the scrape (OpenMetrics) succeeded
    assert last_value(adapter_series, "up") == 1.0
    assert last_value(example_series, "example_http_responses_total", code_class="5xx") == 1.0
    assert last_value(example_series, "example_http_responses_total", code_class="4xx") == 1.0
    assert last_value(example_series, "example_http_requests_total", route="/hello/{name}") == 2.0
    assert last_value(example_series, "example_build_info") == 1.0
    assert all(s.labels.get("instance") == example.address for s in example_series)
