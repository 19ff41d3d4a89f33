"""Fixtures of the load generator's tests: the null server as a subprocess."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from tests.support.net import free_port, wait_http_ok
from tests.support.procs import Processes

READY_TIMEOUT = 30.0


@pytest.fixture
def null_server(processes: Processes) -> Callable[..., str]:
    """Start ``python -m remote_storage.loadgen.null_server``: ``null_server("--status", "400")``.

    Returns its write URL once ``/-/ready`` answers 200.
    """

    def start(*args: str) -> str:
        port = free_port()
        name = f"null-server-{sum(p.name.startswith('null-server') for p in processes.processes)}"
        argv = [
            sys.executable,
            "-m",
            "remote_storage.loadgen.null_server",
            "--listen",
            f"127.0.0.1:{port}",
            *args,
        ]
        proc = processes.start(name, argv)
        wait_http_ok(f"http://127.0.0.1:{port}/-/ready", READY_TIMEOUT, alive=proc.check_alive)
        return f"http://127.0.0.1:{port}/api/v1/write"

    return start
