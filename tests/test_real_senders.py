"""Client libraries other than Prometheus write to the service and their samples read back.

The PyPI ``prometheus-remote-writer`` client sends label names in the order
the caller wrote them, unsorted; Prometheus sorts them and stores, and so
must the service. The client bundles its own generated protobuf modules
under the names this package's use, so it runs in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from remote_storage.matchers import Matcher
from tests.support.adapter import Adapter
from tests.support.wire import READ_HEADERS, read_body, read_results

SEND_TIMEOUT = 60.0

# Runs in its own interpreter: argv[1] the write URL, argv[2] the metrics as JSON.
CLIENT = """
import json, sys
from prometheus_remote_writer import RemoteWriter

writer = RemoteWriter(url=sys.argv[1], retries=0, timeout=10.0)
try:
    result = writer.send(json.loads(sys.argv[2]))
    print(json.dumps({"status": result.last_response.status_code, "samples": result.samples_sent}))
finally:
    writer.close()
"""


def send(url: str, metrics: list[dict[str, object]]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, url, json.dumps(metrics)],
        capture_output=True,
        text=True,
        timeout=SEND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, int] = json.loads(done.stdout)
    return answer


def read(
    adapter: Adapter, start: int, end: int
) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    body = read_body((start, end, [Matcher.parse("__name__", "=~", "client_.*")]))
    request = urllib.request.Request(adapter.read_url, data=body, headers=READ_HEADERS, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        [result] = read_results(response.read())
    return {tuple(s.labels): list(zip(s.timestamps, s.values, strict=True)) for s in result.series}


@pytest.mark.parametrize("storage", ["memory://", "sqlite"])
def test_prometheus_remote_writer_client_writes_unsorted_labels_and_reads_back(
    adapter: Callable[..., Adapter], tmp_path: Path, storage: str
) -> None:
    url = f"sqlite:///{tmp_path}/client.db" if storage == "sqlite" else storage
    service = adapter(url)
    now = int(time.time() * 1000)
    metrics: list[dict[str, object]] = [
        {  # label names in the caller's order, not sorted
            "metric": {"job": "client", "__name__": "client_requests", "instance": "a:1"},
            "values": [1.0, 2.0, 3.5],
            "timestamps": [now - 2000, now - 1000, now],
        },
        {
            "metric": {"zone": "eu", "__name__": "client_temperature", "app": "x"},
            "values": [21.5],
            "timestamps": [now],
        },
    ]
    answer = send(service.write_url, metrics)
    assert answer == {"status": 204, "samples": 4}
    stored = read(service, now - 60_000, now + 60_000)
    assert stored == {
        (("__name__", "client_requests"), ("instance", "a:1"), ("job", "client")): [
            (now - 2000, 1.0),
            (now - 1000, 2.0),
            (now, 3.5),
        ],
        (("__name__", "client_temperature"), ("app", "x"), ("zone", "eu")): [(now, 21.5)],
    }
    # sent again, sorted or not, it is the same series: the retry is a no-op
    assert send(service.write_url, metrics) == {"status": 204, "samples": 4}
    assert read(service, now - 60_000, now + 60_000) == stored
