"""Worker processes of ``serve --workers N`` never outlive the process that started them.

The parent forwards SIGTERM and SIGINT to its workers, but SIGKILL (the OOM
killer, ``kill -9``, a crashed supervisor) leaves it no chance to: the
workers must notice by themselves, stop gracefully and free the port.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from tests.support.adapter import start_adapter
from tests.support.net import poll_until
from tests.support.procs import Processes, child_pids, is_running

START_TIMEOUT = 30.0
#: Workers are gone within this long after their parent was killed (a graceful stop included).
EXIT_BOUND = 20.0


def worker_pids(parent: int) -> list[int]:
    """The parent's worker processes (multiprocessing also starts a resource tracker: left out)."""
    found = []
    for pid in child_pids(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(pid)
    return found


def port_is_free(port: int) -> bool | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR ignores connections in TIME_WAIT, never a socket that still listens.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return True


def test_workers_stop_gracefully_when_their_parent_is_killed(processes: Processes, tmp_path: Path) -> None:
    started = start_adapter(processes, f"sqlite:///{tmp_path}/d.db", extra_args=("--workers", "2"))
    started.wait_ready(START_TIMEOUT)
    poll_until(
        lambda: True if started.process.log_text().count("listening on http") == 2 else None,
        START_TIMEOUT,
        "both workers listening",
    )
    workers = worker_pids(started.process.pid)
    assert len(workers) == 2, workers
    assert not port_is_free(started.port)

    os.kill(started.process.pid, signal.SIGKILL)  # the parent only: its workers are left to themselves
    started.process.wait(EXIT_BOUND)
    poll_until(
        lambda: True if not any(is_running(pid) for pid in workers) else None,
        EXIT_BOUND,
        f"workers {workers} to exit after their parent was killed",
    )
    poll_until(lambda: port_is_free(started.port), EXIT_BOUND, f"port {started.port} to be released")
    log = started.process.log_text()
    for index in range(2):  # each stopped as on SIGTERM: requests finished, the backend closed
        assert f"worker-{index} remote_storage: stopped" in log, log
