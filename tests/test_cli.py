"""``remote-storage serve`` as a process: start-up line, readiness, clean stop on signals, bad settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from remote_storage.backends import redact_url
from tests.support.adapter import Adapter


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_logs_where_it_listens_and_stops_cleanly(adapter: Callable[..., Adapter], signum: int) -> None:
    started = adapter("memory://")
    log = started.process.log_text()
    assert f"listening on http://127.0.0.1:{started.port} with storage memory:// (memory" in log
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


def test_help_lists_environment_variables() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    assert "REMOTE_STORAGE_STORAGE" in result.stdout


def test_passwords_are_redacted_in_logs() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/metrics") == "postgresql://app:***@db:5432/metrics"
    assert redact_url("memory://") == "memory://"
