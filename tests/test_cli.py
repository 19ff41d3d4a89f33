"""``remote-storage serve`` as a process: start-up line, readiness, clean stop on signals, bad settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from remote_storage.backends import redact_url
from remote_storage.matchers import Matcher
from tests.support.adapter import Adapter, start_adapter
from tests.support.net import poll_until
from tests.support.procs import Processes
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, read_results, series, v1_body


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_logs_where_it_listens_and_stops_cleanly(adapter: Callable[..., Adapter], signum: int) -> None:
    started = adapter("memory://")
    log = started.process.log_text()
    assert f"listening on http://127.0.0.1:{started.port} with storage memory (" in log
    os.kill(started.process.pid, signum)
    assert started.process.wait(timeout=15) == 0, started.process.describe()
    assert "shutting down" in started.process.log_text()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORAGE_")}
    return subprocess.run(
        [sys.executable, "-m", "remote_storage", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_bad_settings_fail_at_start_with_the_flag_named() -> None:
    result = run_cli("serve", "--listen", "127.0.0.1:0", "--max-request-bytes", "huge")
    assert result.returncode == 2
    assert "--max-request-bytes: invalid size 'huge'" in result.stderr


def test_unknown_backend_scheme() -> None:
    result = run_cli("serve", "--listen", "127.0.0.1:0", "--storage", "nosuchdb://x")
    assert result.returncode == 2
    assert "no storage backend for scheme 'nosuchdb'" in result.stderr
    assert "memory" in result.stderr
    assert "entry point in the 'remote_storage.backends' group" in result.stderr


def test_help_lists_environment_variables() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    assert "REMOTE_STORAGE_STORAGE" in result.stdout


def test_passwords_are_redacted_in_logs() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/metrics") == "postgresql://app:***@db:5432/metrics"
    assert redact_url("memory://") == "memory://"


def test_workers_share_one_port_over_sqlite(processes: Processes, tmp_path: Path) -> None:
    started = start_adapter(processes, f"sqlite:///{tmp_path}/d.db", extra_args=("--workers", "2"))
    started.wait_ready(30)  # the first worker is up; wait for the second one's line too
    poll_until(
        lambda: True if started.process.log_text().count("listening on http") == 2 else None,
        30,
        "both workers listening",
    )
    body = v1_body([series([1000 * i], [float(i)], __name__="m", job=str(i)) for i in range(50)])
    for _ in range(20):  # connections spread over the workers; every one answers
        request = urllib.request.Request(started.write_url, data=body, headers=V1_HEADERS, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 204
    query = read_body((0, 10**6, [Matcher.parse("__name__", "=", "m")]))
    request = urllib.request.Request(started.read_url, data=query, headers=READ_HEADERS, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        [result] = read_results(response.read())
    assert len(result.series) == 50
    os.kill(started.process.pid, signal.SIGTERM)
    assert started.process.wait(timeout=30) == 0, started.process.describe()
    assert "all workers stopped" in started.process.log_text()


def test_memory_backend_refuses_several_workers() -> None:
    result = run_cli("serve", "--listen", "127.0.0.1:0", "--storage", "memory://", "--workers", "2")
    assert result.returncode == 2
    assert "keeps data inside one process" in result.stderr
