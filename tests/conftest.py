"""Shared fixtures: processes stopped after each test, the adapter, Prometheus."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.adapter import Adapter, start_adapter
from tests.support.procs import Processes
from tests.support.prometheus import Prometheus, PrometheusConfig, start_prometheus
from tests.support.system import ensure_debian_package

PROCESSES = pytest.StashKey[Processes]()
READY_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    """Path of the Prometheus server binary (Debian package ``prometheus``)."""
    return ensure_debian_package("prometheus", "prometheus")


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    """Processes a test starts; all stopped at teardown, their logs shown on failure."""
    group = Processes(tmp_path / "logs")
    request.node.stash[PROCESSES] = group
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
def adapter(processes: Processes) -> Callable[..., Adapter]:
    """Start the service: ``adapter("memory://")``; returns once ``/-/ready`` is 200."""

    def start(storage: str = "memory://", *, timeout: float = READY_TIMEOUT) -> Adapter:
        name = f"adapter-{sum(p.name.startswith('adapter') for p in processes.processes)}"
        started = start_adapter(processes, storage, name=name)
        started.wait_ready(timeout)
        return started

    return start


@pytest.fixture
def prometheus(processes: Processes, prometheus_bin: str, tmp_path: Path) -> Callable[..., Prometheus]:
    """Start Prometheus: ``prometheus("a", PrometheusConfig(...))``; returns once ready."""

    def start(
        name: str,
        config: PrometheusConfig,
        *,
        timeout: float = READY_TIMEOUT,
        **options: Any,
    ) -> Prometheus:
        started = start_prometheus(processes, prometheus_bin, tmp_path, name, config, **options)
        started.wait_ready(timeout)
        return started

    return start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    group = item.stash.get(PROCESSES, None)
    if report.failed and group is not None:
        for proc in group.processes:
            report.sections.append((f"log of {proc.name}", proc.describe()))
    return report
