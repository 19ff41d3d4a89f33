"""Latency percentiles, the tally of outcomes, the summary as text and JSON, the progress line."""

from __future__ import annotations

import io
import json

import pytest

from remote_storage.loadgen.progress import Progress
from remote_storage.loadgen.report import (
    ERROR_BODY_LIMIT,
    GenerationStats,
    LatencyStats,
    Summary,
    Tally,
    format_rate,
    percentile,
)


def test_percentiles_are_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert [percentile(ordered, f) for f in (0.5, 0.9, 0.99, 1.0)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([7.0], 0.5) == percentile([7.0], 0.99) == 7.0
    assert [percentile([1.0, 2.0, 3.0], f) for f in (0.3, 0.34, 0.67, 0.9)] == [1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 0.0)


def test_latency_stats() -> None:
    stats = LatencyStats.of([0.010, 0.002, 0.001, 0.004, 0.003] * 20)
    assert (stats.count, stats.p50, stats.p90, stats.p99, stats.max) == (100, 0.003, 0.010, 0.010, 0.010)
    assert stats.mean == pytest.approx(0.004)
    assert LatencyStats.of([]) == LatencyStats(0, None, None, None, None, None)


def sample_tally() -> Tally:
    tally = Tally()
    tally.response(204, b"", 0.001, 2_000, 2_000, 90_000)
    tally.response(400, b"out of order sample\n", 0.002, 2_000, 0, 90_000)
    tally.response(400, b"another message", 0.003, 2_000, 0, 90_000)
    tally.response(503, b"x" * 5_000, 0.004, 2_000, 0, 90_000)
    tally.failure("timeout", "no response within --timeout 30s", 30.0, 2_000, 90_000)
    return tally


def test_tally_counts_outcomes_and_keeps_the_first_error_of_each_kind() -> None:
    tally = sample_tally()
    assert (tally.requests, tally.requests_ok, tally.failed) == (5, 1, 4)
    assert (tally.samples_sent, tally.samples_accepted, tally.bytes_sent) == (10_000, 2_000, 450_000)
    assert tally.non_2xx[400].count == 2
    assert tally.non_2xx[400].first == "out of order sample"
    assert len(tally.non_2xx[503].first) == ERROR_BODY_LIMIT
    assert tally.transport_errors["timeout"].count == 1
    assert list(tally.latencies) == [0.001, 0.002, 0.003, 0.004, 30.0]


def summary(tally: Tally) -> Summary:
    generation = GenerationStats(
        ahead_requests=5, ahead_samples=10_000, ahead_bytes=450_000, ahead_seconds=0.5
    )
    return Summary.of("http://127.0.0.1:1/api/v1/write", {"description": "test"}, 2.0, tally, generation)


def test_summary_json_shape() -> None:
    result = summary(sample_tally()).to_json()
    assert json.loads(json.dumps(result)) == result
    assert result["ok"] is False
    assert (result["requests"], result["requests_ok"], result["requests_failed"]) == (5, 1, 4)
    assert (result["samples_sent"], result["samples_accepted"]) == (10_000, 2_000)
    assert result["samples_per_second"] == 1_000.0
    assert result["offered_samples_per_second"] == 5_000.0
    assert set(result["latency_seconds"]) == {"count", "mean", "p50", "p90", "p99", "max"}
    assert result["non_2xx"]["400"] == {"count": 2, "first_body": "out of order sample"}
    assert result["transport_errors"]["timeout"]["count"] == 1
    assert result["generation"]["ahead_samples_per_second"] == 20_000.0


def test_summary_text_lists_errors_and_percentiles() -> None:
    text = summary(sample_tally()).format()
    assert "HTTP 400   2 requests; first body: 'out of order sample'" in text
    assert "timeout   1 requests" in text
    assert "p50 3.0 ms" in text and "max 30000.0 ms" in text
    assert "5 in 2.00 s" in text


def test_ok_means_every_request_got_2xx() -> None:
    tally = Tally()
    assert summary(tally).ok  # nothing sent, nothing failed
    tally.response(200, b"", 0.1, 10, 10, 100)
    assert summary(tally).ok
    tally.failure("ClientConnectorError", "refused", 0.1, 10, 100)
    assert not summary(tally).ok


def test_rates_are_formatted_for_people() -> None:
    assert format_rate(2_470_000) == "2.47 M samples/s"
    assert format_rate(18_580.4) == "18,580 samples/s"


def test_progress_lines() -> None:
    tally = sample_tally()
    log = io.StringIO()
    progress = Progress(log, total=10, tty=False)
    progress.show(tally)
    progress.finish()
    assert log.getvalue().endswith(" errors\n") and log.getvalue().count("\n") == 1
    assert "5/10 requests" in log.getvalue() and "4 errors" in log.getvalue()

    terminal = io.StringIO()
    progress = Progress(terminal, total=None, tty=True)
    progress.show(tally)
    progress.show(tally)
    progress.finish()
    assert terminal.getvalue().startswith("\rloadgen ")
    assert terminal.getvalue().count("\r") == 2 and terminal.getvalue().endswith("\x1b[K\n")
