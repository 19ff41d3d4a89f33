"""Loadgen against real servers: the null server, a stub answering 400, and the service itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from remote_storage.loadgen import cli
from remote_storage.matchers import Matcher
from tests.support import wire
from tests.support.adapter import Adapter
from tests.support.load import HttpClient
from tests.support.net import free_port

RUN_TIMEOUT = 120.0


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run loadgen in this process with ``--json --quiet``; exit status and summary."""
    status = cli.main([*argv, "--json", "--quiet"])
    return status, json.loads(capsys.readouterr().out)


def test_against_the_null_server(null_server: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> None:
    url = null_server()
    status, summary = run_json(capsys, url, "--series", "5000", "--requests", "40", "--concurrency", "4")
    assert status == 0
    assert summary["ok"] is True
    assert (summary["requests"], summary["requests_ok"], summary["requests_failed"]) == (40, 40, 0)
    # 5,000 series make requests of 2,000, 2,000 and 1,000 series.
    assert (
        summary["samples_sent"]
        == summary["samples_accepted"]
        == sum((2_000, 2_000, 1_000)[i % 3] for i in range(40))
    )
    assert summary["non_2xx"] == summary["transport_errors"] == {}
    assert summary["latency_seconds"]["count"] == 40
    assert summary["latency_seconds"]["p50"] <= summary["latency_seconds"]["max"]
    assert summary["generation"]["ahead_requests"] == 40
    assert summary["workload"]["series"] == 5_000
    assert summary["url"] == url


def test_json_summary_shape(null_server: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> None:
    status, summary = run_json(
        capsys, null_server(), "--series", "2000", "--requests", "3", "--protocol", "v2"
    )
    assert status == 0
    assert set(summary) == {
        "url",
        "workload",
        "ok",
        "duration_seconds",
        "requests",
        "requests_ok",
        "requests_failed",
        "samples_sent",
        "samples_accepted",
        "bytes_sent",
        "requests_per_second",
        "samples_per_second",
        "offered_samples_per_second",
        "latency_seconds",
        "non_2xx",
        "transport_errors",
        "generation",
    }
    assert set(summary["latency_seconds"]) == {"count", "mean", "p50", "p90", "p99", "max"}
    assert set(summary["generation"]) == {
        "ahead_requests",
        "ahead_samples",
        "ahead_bytes",
        "ahead_seconds",
        "during_run_requests",
        "waited_seconds",
        "ahead_samples_per_second",
    }
    assert summary["workload"]["protocol"] == "v2"


def test_bodies_rendered_during_the_run_when_the_buffer_is_small(
    null_server: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, summary = run_json(
        capsys, null_server(), "--series", "20000", "--requests", "60", "--buffer", "1MiB", "--churn", "6000"
    )
    assert status == 0
    generation = summary["generation"]
    assert generation["ahead_requests"] < 60
    assert generation["ahead_requests"] + generation["during_run_requests"] == 60
    assert summary["samples_accepted"] == 60 * 2_000


def test_a_duration_ends_the_run(null_server: Callable[..., str], capsys: pytest.CaptureFixture[str]) -> None:
    status, summary = run_json(
        capsys, null_server(), "--series", "2000", "--duration", "300ms", "--rate", "40k"
    )
    assert status == 0
    assert summary["workload"]["request_limit"] is None
    assert summary["requests"] == summary["requests_ok"]


def test_rejections_are_summarized_with_their_first_body(null_server: Callable[..., str]) -> None:
    url = null_server("--status", "400", "--message", "out of bounds: sample too old")
    argv = [
        sys.executable,
        "-m",
        "remote_storage.loadgen",
        url,
        "--series",
        "2000",
        "--requests",
        "5",
        "--json",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is False
    assert (summary["requests"], summary["requests_ok"], summary["samples_accepted"]) == (5, 0, 0)
    assert summary["non_2xx"] == {"400": {"count": 5, "first_body": "out of bounds: sample too old"}}
    assert "HTTP 400   5 requests; first body: 'out of bounds: sample too old'" in result.stderr


def test_connection_errors_fail_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nothing listens there
    status, summary = run_json(capsys, url, "--series", "2000", "--requests", "3", "--timeout", "10s")
    assert status == 1
    assert summary["requests_failed"] == 3
    (kind,) = summary["transport_errors"]
    assert summary["transport_errors"][kind]["count"] == 3
    assert "127.0.0.1" in summary["transport_errors"][kind]["first_message"]


def stored_samples(adapter: Adapter) -> tuple[int, int]:
    """Series and samples the service holds under any metric name, read back by remote read."""
    query = (0, 2**62, [Matcher.parse("__name__", "=~", ".+")])
    with HttpClient(adapter.address) as client:
        status, body = client.post("/api/v1/read", wire.read_body(query), wire.READ_HEADERS)
    assert status == 200, body[:300]
    (result,) = wire.read_results(body)
    return len(result.series), sum(len(series.timestamps) for series in result.series)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_the_service_stores_what_loadgen_reports_accepted(
    adapter: Callable[..., Adapter], capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    service = adapter("memory://")
    status, summary = run_json(
        capsys, service.write_url, "--series", "2000", "--requests", "20", "--protocol", protocol
    )
    assert status == 0, summary
    assert summary["samples_accepted"] == 20 * 2_000
    assert stored_samples(service) == (2_000, summary["samples_accepted"])
