"""Fixtures for the instrumentation tests: the example web service as a subprocess."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_http_ok
from tests.support.procs import ManagedProcess, Processes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "instrumented_service.py"
READY_TIMEOUT = 30.0


@dataclass
class ExampleService:
    process: ManagedProcess
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@pytest.fixture
def example_service(processes: Processes) -> Callable[[], ExampleService]:
    """Start ``examples/instrumented_service.py`` on a free port; returns once ``/metrics`` answers."""

    def start() -> ExampleService:
        address = f"127.0.0.1:{free_port()}"
        process = processes.start("example", [sys.executable, str(EXAMPLE), "--listen", address])
        wait_http_ok(f"http://{address}/metrics", READY_TIMEOUT, alive=process.check_alive)
        return ExampleService(process, address)

    return start
