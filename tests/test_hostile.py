"""Hostile requests against a real server process: the event loop keeps answering health checks.

Regex matchers that cost RE2 about a millisecond per label value, and one
write of 150,000 new series, run while ``/-/healthy`` is asked ten times a
second; every answer must come within :data:`HEALTH_BOUND` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from remote_storage.matchers import Matcher
from tests.support.adapter import Adapter
from tests.support.pressure import HealthProbe, Reply, metric_value, post
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, series, v1_body

HEALTH_BOUND = 1.0
HOSTILE_REGEX = "(.*){1000}"
QUERIES = 20
LABEL_VALUES = 1000
HUGE_WRITE_SERIES = 150_000
START_MS = 1_700_000_000_000


def _concurrently(count: int, send: Callable[[], Reply]) -> list[Reply | BaseException]:
    replies: list[Reply | BaseException] = [RuntimeError("not sent")] * count

    def run(index: int) -> None:
        try:
            replies[index] = send()
        except BaseException as exc:  # reported by the test
            replies[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return replies


def test_health_answers_while_hostile_regex_queries_run(
    adapter: Callable[..., Adapter], any_storage_url: str
) -> None:
    server = adapter(any_storage_url, extra_args=("--read-timeout", "5s"))
    values = [series([START_MS], [1.0], __name__="hostile", i=f"value-{i:05d}") for i in range(LABEL_VALUES)]
    assert post(server.write_url, v1_body(values), V1_HEADERS).status == 204
    body = read_body((START_MS, START_MS + 1000, [Matcher.parse("i", "=~", HOSTILE_REGEX)]))

    with HealthProbe(server.url) as probe:
        replies = _concurrently(QUERIES, lambda: post(server.read_url, body, READ_HEADERS))

    statuses = sorted(r.status if isinstance(r, Reply) else repr(r) for r in replies)
    assert {r.status for r in replies if isinstance(r, Reply)} <= {200, 429, 503}, statuses
    assert all(isinstance(r, Reply) for r in replies), statuses
    assert 429 in statuses  # more than --max-inflight-reads (8) at once
    assert not probe.failures, probe.failures
    assert probe.latencies, "the probe never ran"
    assert probe.slowest < HEALTH_BOUND, f"slowest health answer {probe.slowest:.2f}s ({statuses})"


@pytest.fixture(scope="module")
def huge_body() -> bytes:
    return v1_body(
        series([START_MS], [float(i)], __name__="huge_write", instance=f"host-{i:06d}", job="j")
        for i in range(HUGE_WRITE_SERIES)
    )


def test_health_answers_while_a_huge_write_is_decoded_and_stored(
    adapter: Callable[..., Adapter], any_storage_url: str, huge_body: bytes
) -> None:
    # the per-request limits off: the point is a write as large as --max-request-bytes allows
    server = adapter(
        any_storage_url,
        extra_args=("--workers", "1", "--max-series-per-request", "0", "--max-samples-per-request", "0"),
    )
    body = huge_body

    with HealthProbe(server.url) as probe:
        reply = post(server.write_url, body, V1_HEADERS, timeout=300)
    assert reply.status == 204, reply
    assert not probe.failures, probe.failures
    assert len(probe.latencies) > 1, "the write ended before the probe asked twice"
    assert probe.slowest < HEALTH_BOUND, f"slowest health answer {probe.slowest:.2f}s"
    assert metric_value(server.url, "remote_storage_series") == HUGE_WRITE_SERIES
