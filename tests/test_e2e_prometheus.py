"""Acceptance: what a real Prometheus remote-writes, another reads back unchanged.

Prometheus A scrapes the storage, itself and a target the test controls, and
remote-writes everything to the storage. Prometheus B has no data of its own
and only remote-reads from the storage. The same PromQL over a range that was
fully written must give identical answers on A and B: the same series and the
same (timestamp, value) pairs, values compared as the strings the API sends.

The storage is the adapter; the same scenario also runs against Prometheus'
own remote-write receiver and read endpoint, the reference implementation, so
a failure against the adapter is known not to be the scenario's own fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support.adapter import Adapter
from tests.support.exporter import StaticExporter
from tests.support.net import Deadline, free_port, poll_until
from tests.support.prometheus import (
    Prometheus,
    PrometheusConfig,
    diff_results,
    remote_read_from,
    remote_write_to,
    scrape_job,
    series_points,
)

pytestmark = pytest.mark.prometheus

TEST_TIMEOUT = 90.0
STEP = 1.0
# Scrapes of the controlled target before and after one of its series goes away.
SCRAPES_BEFORE_REMOVAL = 7
SCRAPES_AFTER_REMOVAL = 8
# Margins that keep the compared range away from both edges of what was written.
START_MARGIN = 3.0
END_MARGIN = 2.0

# No -0: Prometheus' protobuf encoder omits a zero double, so remote write
# itself turns -0 into 0 (seen with its own receiver too).
KEPT = """\
# TYPE e2e_requests_total counter
e2e_requests_total{path="/"} 12345
# TYPE e2e_values gauge
e2e_values{kind="nan"} NaN
e2e_values{kind="inf"} +Inf
e2e_values{kind="neg_inf"} -Inf
e2e_values{kind="smallest"} 5e-324
e2e_values{kind="largest"} 1.7976931348623157e+308
e2e_values{kind="inexact"} 0.30000000000000004
e2e_values{kind="text",note="caf\u00e9 \\"quoted\\" back\\\\slash"} 1
"""
REMOVED = """\
# TYPE e2e_removed gauge
e2e_removed{phase="before"} 42
"""

QUERIES = [
    "up",
    '{job="adapter"}',
    '{job="target"}',
    "prometheus_tsdb_head_samples_appended_total",
    "rate(prometheus_tsdb_head_samples_appended_total[3s])",
    'sum by (job) (scrape_samples_scraped{job=~".+"})',
    'count_over_time({__name__=~"e2e_.+"}[4s])',
]


@dataclass(frozen=True)
class Storage:
    """Where A writes and B reads; ``address`` is scraped as job "adapter"."""

    address: str
    write_url: str
    read_url: str


@pytest.fixture(params=["adapter", "reference-prometheus"])
def storage(
    request: pytest.FixtureRequest,
    adapter: Callable[..., Adapter],
    prometheus: Callable[..., Prometheus],
) -> Storage:
    if request.param == "adapter":
        service = adapter("memory://")
        return Storage(service.address, service.write_url, service.read_url)
    reference = prometheus("reference", PrometheusConfig(), remote_write_receiver=True)
    return Storage(reference.address, f"{reference.url}/api/v1/write", f"{reference.url}/api/v1/read")


@pytest.fixture
def target() -> Iterator[StaticExporter]:
    with StaticExporter(KEPT + REMOVED) as exporter:
        yield exporter


def test_remote_read_answers_like_the_writer(
    storage: Storage,
    prometheus: Callable[..., Prometheus],
    target: StaticExporter,
) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    port_a = free_port()
    writer = prometheus(
        "a",
        PrometheusConfig(
            scrape_configs=[
                scrape_job("adapter", storage.address),
                scrape_job("prometheus", f"127.0.0.1:{port_a}"),
                scrape_job("target", target.address),
            ],
            remote_write=[remote_write_to(storage.write_url)],
        ),
        port=port_a,
        timeout=deadline.remaining(30),
    )

    before = wait_for_samples(writer, SCRAPES_BEFORE_REMOVAL, deadline)
    target.set_text(KEPT)  # A writes a stale marker for e2e_removed at its next scrape
    wait_for_samples(writer, before + SCRAPES_AFTER_REMOVAL, deadline)

    start, end = written_range(writer)
    wait_until_sent(writer, end + END_MARGIN, deadline)

    reader = prometheus(
        "b",
        PrometheusConfig(remote_read=[remote_read_from(storage.read_url, read_recent=True)]),
        timeout=deadline.remaining(30),
    )

    problems: dict[str, list[str]] = {}
    for promql in QUERIES:
        expected = writer.query_range(promql, start, end, STEP)
        assert series_points(expected), f"{promql!r} is empty on A: the scenario is broken"
        diff = diff_results(expected, reader.query_range(promql, start, end, STEP))
        if diff:
            problems[promql] = diff
    # Raw samples of every series, not just what PromQL evaluation shows.
    raw = f'{{__name__=~".+"}}[{round((end - start) * 1000)}ms]'
    expected = writer.query(raw, end)
    assert len(series_points(expected)) > len(QUERIES), f"too few series on A: {expected}"
    diff = diff_results(expected, reader.query(raw, end))
    if diff:
        problems[raw] = diff

    assert not problems, "B (remote read) differs from A (local TSDB):\n" + "\n".join(
        f"{promql}:\n  " + "\n  ".join(lines) for promql, lines in problems.items()
    )
    assert_stale_marker_inside(writer, start, end)


def wait_for_samples(writer: Prometheus, count: int, deadline: Deadline) -> int:
    """Wait until A holds ``count`` samples of ``up{job="target"}``; return how many."""

    def check() -> int | None:
        result = series_points(writer.query('count_over_time(up{job="target"}[5m])'))
        have = int(float(next(iter(result.values()))[0][1])) if result else 0
        return have if have >= count else None

    return poll_until(check, deadline.remaining(), f"{count} scrapes of the target on A")


def written_range(writer: Prometheus) -> tuple[float, float]:
    """A range that every scrape job covers, clear of the first and last samples."""
    firsts, lasts = [], []
    for points in series_points(writer.query("up[5m]")).values():
        firsts.append(points[0][0])
        lasts.append(points[-1][0])
    assert len(firsts) == 3, f"expected up for 3 jobs on A, got {len(firsts)}"
    start, end = max(firsts) + START_MARGIN, min(lasts) - END_MARGIN
    assert end - start >= 5 * STEP, f"range too short: {start}..{end}"
    return start, end


def wait_until_sent(writer: Prometheus, until: float, deadline: Deadline) -> None:
    """Wait until A's remote-write queue has had samples up to ``until`` acknowledged.

    With one shard samples are sent in append order, and every scrape that
    started before ``until - 1s`` was appended before any sample stamped
    ``until``, so everything up to the compared range's end has arrived.
    """
    name = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"

    def check() -> float | None:
        sent = writer.metric_values(name)
        return sent[0] if sent and sent[0] >= math.ceil(until) else None

    poll_until(check, deadline.remaining(), f"{name} >= {until:.3f} on A")


def assert_stale_marker_inside(writer: Prometheus, start: float, end: float) -> None:
    """On A, e2e_removed ends inside the range: a stale marker, not the 5m lookback, ended it.

    Only then does B's identical answer show that the stale marker survived.
    """
    series = series_points(writer.query_range("e2e_removed", start, end, STEP))
    assert len(series) == 1, f"e2e_removed on A: {series}"
    points = next(iter(series.values()))
    assert start + STEP <= points[-1][0] < end - STEP, (
        f"e2e_removed should end inside {start}..{end} on A, has points {points}"
    )
