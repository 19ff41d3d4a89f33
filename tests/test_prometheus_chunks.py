"""The XOR decoder against a real Prometheus: its streamed remote-read chunks decode to its own answers."""

from __future__ import annotations

import math
import struct
import urllib.request
from collections.abc import Callable

import pytest

from remote_storage.chunks import decode_chunk
from remote_storage.matchers import Matcher
from remote_storage.protocol import streamed
from remote_storage.protocol.negotiation import ResponseType
from tests.support.net import Deadline, free_port, poll_until
from tests.support.prometheus import Prometheus, PrometheusConfig, scrape_job, series_points
from tests.support.wire import READ_HEADERS, read_body

pytestmark = pytest.mark.prometheus

STALE_BITS = 0x7FF0000000000002


def test_streamed_chunks_of_prometheus_decode_to_its_query_results(
    prometheus: Callable[..., Prometheus],
) -> None:
    deadline = Deadline(60)
    port = free_port()
    server = prometheus(
        "source",
        PrometheusConfig(scrape_configs=[scrape_job("prometheus", f"127.0.0.1:{port}", interval="1s")]),
        port=port,
    )

    def enough() -> float | None:
        points = series_points(server.query('count_over_time(up{job="prometheus"}[5m])'))
        if not points:
            return None
        count = int(float(next(iter(points.values()))[0][1]))
        return count if count >= 6 else None

    poll_until(enough, deadline.remaining(), "6 scrapes on Prometheus")
    end_s = float(server.query("time()")["result"][0])
    window_ms = 5 * 60 * 1000
    end_ms = round(end_s * 1000)
    start_ms = end_ms - window_ms + 1  # inside the range selector's window whichever end it includes

    body = read_body(
        (start_ms, end_ms, [Matcher.parse("job", "=", "prometheus")]),
        accepted=(ResponseType.STREAMED_XOR_CHUNKS,),
    )
    request = urllib.request.Request(
        f"{server.url}/api/v1/read", data=body, headers=READ_HEADERS, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == streamed.CONTENT_TYPE
        frames = streamed.decode_frames(response.read())
    assert frames, "Prometheus streamed nothing"

    decoded: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    chunk_count = 0
    for message in frames:
        [series] = message.chunked_series
        labels = tuple(sorted((label.name, label.value) for label in series.labels))
        points = decoded.setdefault(labels, {})
        for chunk in series.chunks:
            assert chunk.type == 1
            chunk_count += 1
            timestamps, values = decode_chunk(chunk.data)
            assert (timestamps[0], timestamps[-1]) == (chunk.min_time_ms, chunk.max_time_ms)
            for t, v in zip(timestamps, values, strict=True):
                if start_ms <= t <= end_ms and struct.unpack("<Q", struct.pack("<d", v))[0] != STALE_BITS:
                    points[t] = v

    expected = series_points(server.query(f'{{job="prometheus"}}[{window_ms}ms]', end_s))
    assert len(expected) > 50, "too few series to make the check meaningful"
    assert set(decoded) == set(expected)
    compared = 0
    for labels, points in expected.items():
        got = decoded[labels]
        assert sorted(got) == [round(t * 1000) for t, _ in points], labels
        for t, text in points:
            value = got[round(t * 1000)]
            assert (math.isnan(value) and text == "NaN") or value == float(text), (labels, t, text, value)
            compared += 1
    assert compared > 300 and chunk_count >= len(expected)
