"""The label and series APIs answer as a real Prometheus holding the same samples.

The same remote-write body goes to the service (memory and SQLite) and to
Prometheus' own remote-write receiver; then every API call below is made to
both and the JSON answers compared whole (errors by status and type, since
the wording differs).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.adapter import Adapter
from tests.support.load import HttpClient
from tests.support.prometheus import Prometheus, PrometheusConfig
from tests.support.wire import V1_HEADERS, series, v1_body

pytestmark = pytest.mark.prometheus

NOW = int(time.time() * 1000) - 60_000
STEP = 15_000


def data() -> list[Any]:
    stamps = [NOW + i * STEP for i in range(4)]
    return [
        series(stamps, [1.0, 1.0, 0.0, 1.0], __name__="up", job="api", instance="10.0.0.1:9100"),
        series(stamps, [1.0] * 4, __name__="up", job="db", instance="10.0.0.2:9100"),
        series(stamps[:2], [3.0, 4.0], __name__="http_requests_total", job="api", code="200", method="GET"),
        series(stamps[2:], [1.0, 2.0], __name__="http_requests_total", job="api", code="500", method="POST"),
        series(stamps, [20.5] * 4, __name__="temperature_celsius", zone="eu-west", rack="r1"),
        series(stamps[:1], [0.5], __name__="ünïcode_value", label="välue ☃"),
    ]


CALLS: list[tuple[str, list[tuple[str, str]]]] = [
    ("/api/v1/labels", []),
    ("/api/v1/labels", [("match[]", "up")]),
    ("/api/v1/labels", [("match[]", "up"), ("match[]", "temperature_celsius")]),
    ("/api/v1/label/__name__/values", []),
    ("/api/v1/label/job/values", []),
    ("/api/v1/label/code/values", [("match[]", '{method="POST"}')]),
    ("/api/v1/label/instance/values", [("match[]", '{job=~"a.*|d.*"}')]),
    ("/api/v1/label/missing/values", []),
    ("/api/v1/label/label/values", []),
    ("/api/v1/series", [("match[]", "up")]),
    ("/api/v1/series", [("match[]", '{__name__=~".+", job!="api"}')]),
    ("/api/v1/series", [("match[]", 'http_requests_total{code!~"5.."}'), ("match[]", "temperature_celsius")]),
    ("/api/v1/series", [("match[]", '{zone=~"eu-.*", rack="r1"}')]),
    ("/api/v1/series", [("match[]", "up"), ("start", "100"), ("end", "200")]),
    ("/api/v1/labels", [("start", "100"), ("end", "200")]),
    ("/api/v1/series", [("match[]", '{__name__=~".+"}'), ("start", str((NOW - 3_600_000) / 1000))]),
    # errors: compared by status and type
    ("/api/v1/series", []),
    ("/api/v1/series", [("match[]", 'up{job="a"')]),
    ("/api/v1/labels", [("match[]", '{job=""}')]),
    ("/api/v1/labels", [("start", "yesterday")]),
]


def call(base: str, path: str, params: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def comparable(answer: tuple[int, dict[str, Any]]) -> tuple[int, Any]:
    status, body = answer
    if body["status"] == "error":
        return status, (body["status"], body["errorType"])
    return status, (body["status"], body["data"])


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_answers_equal_prometheus(
    adapter: Callable[..., Adapter],
    prometheus: Callable[..., Prometheus],
    tmp_path: Path,
    storage: str,
) -> None:
    service = adapter("memory://" if storage == "memory" else f"sqlite:///{tmp_path / 'data.db'}")
    reference = prometheus("reference", PrometheusConfig(), remote_write_receiver=True)
    body = v1_body(data())
    for address in (service.address, reference.address):
        with HttpClient(address) as client:
            status, answer = client.post("/api/v1/write", body, V1_HEADERS)
            assert status in (200, 204), answer
    problems = []
    assert comparable(call(reference.url, "/api/v1/series", [("match[]", "up")]))[1][1], (
        "Prometheus holds nothing"
    )
    for path, params in CALLS:
        expected = comparable(call(reference.url, path, params))
        actual = comparable(call(service.url, path, params))
        if expected != actual:
            problems.append(f"{path} {params}:\n  Prometheus: {expected}\n  service:    {actual}")
    assert not problems, "\n".join(problems)


def test_tsdb_status_counts_equal_prometheus(
    adapter: Callable[..., Adapter], prometheus: Callable[..., Prometheus]
) -> None:
    service = adapter("memory://")
    reference = prometheus("reference", PrometheusConfig(), remote_write_receiver=True)
    body = v1_body(data())
    for address in (service.address, reference.address):
        with HttpClient(address) as client:
            status, answer = client.post("/api/v1/write", body, V1_HEADERS)
            assert status in (200, 204), answer
    _, expected = call(reference.url, "/api/v1/status/tsdb", [])
    _, actual = call(service.url, "/api/v1/status/tsdb", [])
    assert actual["status"] == expected["status"] == "success"
    for key in (
        "seriesCountByMetricName",
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ):
        ours, theirs = actual["data"][key], expected["data"][key]
        # Prometheus orders ties as its maps iterate: compare counts in order, and names where the
        # top ten holds every entry of both
        assert [e["value"] for e in ours] == [e["value"] for e in theirs], key
        if len(theirs) < 10:
            assert sorted(map(str, ours)) == sorted(map(str, theirs)), key
    assert actual["data"]["headStats"]["numSeries"] == expected["data"]["headStats"]["numSeries"]
    assert set(actual["data"]) == set(expected["data"])
