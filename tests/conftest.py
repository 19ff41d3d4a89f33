"""Shared fixtures: processes stopped after each test, the adapter, Prometheus."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.adapter import Adapter, start_adapter
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.procs import Processes
from tests.support.prometheus import Prometheus, PrometheusConfig, start_prometheus
from tests.support.stores import storage_url_for
from tests.support.system import ensure_debian_package

PROCESSES = pytest.StashKey[Processes]()
POSTGRES = pytest.StashKey[PostgresServer]()
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
    """Start the service: ``adapter("memory://")``; returns once ``/-/ready`` is 200.

    Other keyword arguments go to ``start_adapter`` (``extra_args``, ``ssl_context``,
    ``open_files`` for a lower open-file limit).
    """

    def start(storage: str = "memory://", *, timeout: float = READY_TIMEOUT, **options: Any) -> Adapter:
        name = f"adapter-{sum(p.name.startswith('adapter') for p in processes.processes)}"
        started = start_adapter(processes, storage, name=name, **options)
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


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A private PostgreSQL server (Debian package ``postgresql``), one per test session."""
    with start_postgres(tmp_path_factory.mktemp("postgres-logs")) as server:
        yield server


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh database on ``postgres_server``, dropped after the test."""
    request.node.stash[POSTGRES] = postgres_server
    with postgres_server.database() as url:
        yield url


class PostgresLogOnFailure:
    """Adds the session server's log to the report of a failed test that used ``postgres_url``."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        server = item.stash.get(POSTGRES, None)
        if report.failed and server is not None:
            report.sections.append(("log of the PostgreSQL server", server.describe()))
        return report


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(PostgresLogOnFailure(), "postgres-log-on-failure")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Storage URL of every shipped backend in turn: memory://, a SQLite file, a PostgreSQL database."""
    return storage_url_for(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sql_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Storage URL of the SQL backend on each database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
