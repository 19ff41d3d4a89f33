"""Tests of the programs in ``examples/``, and the steps their end-to-end tests share.

That folder is put on ``sys.path`` here, so its modules import by their own
names (``import parquet_backend``) in the tests and in the child processes
the conformance kit starts (they inherit ``sys.path``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.exporter import StaticExporter
from tests.support.net import Deadline, free_port, poll_until, wait_http_ok
from tests.support.procs import ManagedProcess, Processes
from tests.support.prometheus import Prometheus, PrometheusConfig, remote_write_to, scrape_job, series_points

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

#: scrapes of the test's target before the written range is taken
SCRAPES = 8


def start_example(
    processes: Processes, script: str, *args: str, deadline: Deadline
) -> tuple[str, ManagedProcess]:
    """Run ``examples/<script> --listen 127.0.0.1:<free port> args...``; its URL and process once ready."""
    port = free_port()
    argv = [sys.executable, str(EXAMPLES / script), "--listen", f"127.0.0.1:{port}", *args]
    served = processes.start(script.removesuffix(".py"), argv)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/-/ready", deadline.remaining(30), alive=served.check_alive)
    return url, served


def scrape_and_write(
    prometheus: Callable[..., Prometheus], text: str, write_url: str, deadline: Deadline
) -> tuple[Prometheus, float, float]:
    """Prometheus "a" scrapes a target serving ``text`` and remote-writes to ``write_url``.

    Returns it with the first and last scrape times of the target (seconds)
    once it has scraped ``SCRAPES`` times.
    """
    with StaticExporter(text) as target:
        writer = prometheus(
            "a",
            PrometheusConfig(
                scrape_configs=[scrape_job("target", target.address)],
                remote_write=[remote_write_to(write_url)],
            ),
            timeout=deadline.remaining(30),
        )
        poll_until(lambda: True if target.scrapes >= SCRAPES else None, deadline.remaining(), "scrapes")
    times = [t for points in series_points(writer.query('up{job="target"}[5m]')).values() for t, _ in points]
    return writer, min(times), max(times)
