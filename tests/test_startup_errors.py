"""Every start-up failure is one line on stderr naming the cause and the fix, with a non-zero exit.

Each case starts ``remote-storage serve`` as an operator would, with one
thing wrong, and reads what it prints: one line, no traceback (tracebacks
are for ``--log-level debug``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port

START_TIMEOUT = 60.0


def serve(
    *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``serve`` on ``port`` (a free one by default) with ``args``; what it printed once it exited."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORAGE_")}
    listen = f"127.0.0.1:{free_port() if port is None else port}"
    return subprocess.run(
        [sys.executable, "-m", "remote_storage", "serve", "--listen", listen, *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        env={**base, **(env or {})},
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, f"started anyway:\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, "more than one line:\n" + result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_database_path_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line(serve("--storage", f"sqlite:///{blocker}/x.db"))
    assert "cannot listen" not in line
    assert str(blocker) in line and "not a directory" in line.lower()


def test_database_in_a_directory_that_cannot_be_created() -> None:
    line = one_line(serve("--storage", "sqlite:////proc/remote-storage-test/x.db"))
    assert "/proc/remote-storage-test" in line
    assert "--storage" in line


def test_database_that_is_a_directory(tmp_path: Path) -> None:
    line = one_line(serve("--storage", f"sqlite:///{tmp_path}"))
    assert str(tmp_path) in line and "directory" in line


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("these are not the pages of a database\n" * 200)
    line = one_line(serve("--storage", f"sqlite:///{other}"))
    assert str(other) in line and "not a SQLite database" in line


def test_sqlite_url_without_a_path() -> None:
    line = one_line(serve("--storage", "sqlite://"))
    assert "sqlite:///" in line  # shows the form to use


def test_unknown_url_option(tmp_path: Path) -> None:
    result = serve("--storage", f"sqlite:///{tmp_path / 'x.db'}?bogus=1")
    line = one_line(result)
    assert "bogus" in line
    assert "Warning" not in result.stderr


def test_postgresql_server_down() -> None:
    line = one_line(serve("--storage", f"postgresql://u:secret@127.0.0.1:{free_port()}/db"))
    assert "cannot connect" in line.lower() or "unreachable" in line.lower()
    assert "secret" not in line  # the password never reaches a log


def test_postgresql_without_the_extra(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "psycopg.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    line = one_line(
        serve("--storage", f"postgresql://u:p@127.0.0.1:{free_port()}/db", env={"PYTHONPATH": str(shadow)})
    )
    assert "pip install" in line and "postgresql" in line


def test_port_in_use(busy_port: int) -> None:
    line = one_line(serve("--storage", "memory://", port=busy_port))
    assert f"127.0.0.1:{busy_port}" in line and "in use" in line


def test_workers_on_a_busy_port(busy_port: int, tmp_path: Path) -> None:
    result = serve("--storage", f"sqlite:///{tmp_path / 'x.db'}", "--workers", "2", port=busy_port)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "started 2 worker" not in result.stderr  # never claimed before they bound
    assert f"127.0.0.1:{busy_port}" in result.stderr and "in use" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = serve("--storage", f"sqlite:///{tmp_path}", "--log-level", "debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr
