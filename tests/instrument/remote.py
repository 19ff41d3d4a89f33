"""Reading back what reached the adapter, through its remote-read endpoint."""

from __future__ import annotations

import time
import urllib.request

from remote_storage.matchers import Matcher, MatchType
from remote_storage.storage import TimeSeries
from tests.support.wire import READ_HEADERS, read_body, read_results

HOUR_MS = 3_600_000


def remote_read(read_url: str, *matchers: Matcher, timeout: float = 10.0) -> list[TimeSeries]:
    """Every series matching ``matchers`` with samples in the last hour (or the next minute)."""
    now = int(time.time() * 1000)
    body = read_body((now - HOUR_MS, now + 60_000, matchers))
    request = urllib.request.Request(read_url, data=body, headers=READ_HEADERS, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        [result] = read_results(response.read())
    return result.series


def name_matches(pattern: str) -> Matcher:
    return Matcher(MatchType.RE, "__name__", pattern)


def label_is(name: str, value: str) -> Matcher:
    return Matcher(MatchType.EQ, name, value)
