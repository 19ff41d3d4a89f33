"""The status page in a real browser (headless Chromium, Debian ``chromium``) while writes arrive.

Chromium renders the page served by the service under a steady load of
writes; the numbers it shows are compared with ``/api/v1/status/tsdb`` and
with the series the service stores, and a screenshot is taken (kept with
the test's files when it fails).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.adapter import Adapter
from tests.support.load import HttpClient
from tests.support.net import poll_until
from tests.support.system import ensure_debian_package
from tests.support.wire import V1_HEADERS, series, v1_body
from tests.test_status import page_cells

SERIES = 300
LOAD_SECONDS = 90.0
BROWSER_TIMEOUT = 120.0
# As the machine's notes advise for a closed network: no background fetches, a fresh profile.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class Load(threading.Thread):
    """Writes the same SERIES series with a new timestamp per request until stopped (bounded)."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.stop = threading.Event()
        self.acknowledged = 0
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        step = 0
        with HttpClient(self.address) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                now = int(time.time() * 1000) + step  # distinct timestamps even within a millisecond
                step += 1
                body = v1_body(
                    series(
                        [now],
                        [float(step)],
                        __name__=f"load_metric_{i % 7}",
                        instance=f"host-{i}",
                        job="load",
                    )
                    for i in range(SERIES)
                )
                status, answer = client.post("/api/v1/write", body, V1_HEADERS)
                if status == 204:
                    self.acknowledged += 1
                else:
                    self.failures.append(f"{status} {answer[:200]!r}")
                self.stop.wait(0.05)


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        check=False,
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_status_page_in_chromium_under_load(adapter: Callable[..., Adapter], tmp_path: Path) -> None:
    browser = ensure_debian_package("chromium", "chromium")
    service = adapter(f"sqlite:///{tmp_path / 'data.db'}")
    load = Load(service.address)
    load.start()
    try:
        poll_until(lambda: load.acknowledged >= 5 or load.failures, 30.0, "the load to write")
        assert not load.failures, load.failures[:3]
        dom = chromium(browser, tmp_path / "profile-dom", "--dump-dom", f"{service.url}/")
        screenshot = tmp_path / "status.png"
        shot = chromium(
            browser,
            tmp_path / "profile-shot",
            f"--screenshot={screenshot}",
            "--window-size=1280,1700",
            f"{service.url}/",
        )
        tsdb = get_json(f"{service.url}/api/v1/status/tsdb")
    finally:
        load.stop.set()
        load.join(30.0)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 10_000, "an empty screenshot"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not load.failures, load.failures[:3]

    cells = page_cells(dom.stdout)
    stored = get_json(
        f"{service.url}/api/v1/series?" + urllib.parse.urlencode({"match[]": '{__name__=~".+"}'})
    )["data"]
    assert len(stored) == SERIES
    assert cells.text["stored-series"] == f"{SERIES}" == str(tsdb["data"]["headStats"]["numSeries"])
    assert cells.text["active-series"] == f"{SERIES}"
    assert cells.text["backend-series"] == f"{SERIES}"
    shown = [[name, int(count)] for name, count in cells.rows["top-metric-names"]]
    assert shown == [[e["name"], e["value"]] for e in tsdb["data"]["seriesCountByMetricName"]]
    per_metric = {f"load_metric_{k}": sum(1 for i in range(SERIES) if i % 7 == k) for k in range(7)}
    assert {name: count for name, count in shown} == per_metric
    pairs = {name: int(count) for name, count in cells.rows["top-label-pairs"]}
    assert pairs["job=load"] == SERIES
    assert pairs == {e["name"]: e["value"] for e in tsdb["data"]["seriesCountByLabelValuePair"]}
    assert cells.rows["recent-errors"] == [["none"]]
    assert "ingest-chart" in cells.text
    assert float(cells.text["ingest-rate"].replace(",", "")) >= 0
    assert "sql (sqlite" in cells.text["backend"]
