"""How a backend runs in server processes is registered with its URL scheme, not asked of the backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remote_storage.backends import deployment_for, open_storage
from remote_storage.backends.sql import SQLStorage
from remote_storage.config import Settings
from remote_storage.deployment import ONE_PROCESS, Deployment
from remote_storage.launch import worker_count
from remote_storage.storage import RemoteStorage


def test_memory_runs_in_one_process() -> None:
    assert deployment_for("memory://") is ONE_PROCESS
    assert not ONE_PROCESS.shared_by_processes
    with pytest.raises(ValueError, match="keeps data inside one process"):
        worker_count(Settings(storage="memory://", workers=2))
    assert worker_count(Settings(storage="memory://", workers=0)) == 1


def test_sqlite_is_shared_but_runs_one_worker_on_auto(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/d.db"
    assert deployment_for(url).shared_by_processes
    assert deployment_for(url.replace("sqlite", "sqlite+pysqlite", 1)) is deployment_for(url)
    assert worker_count(Settings(storage=url, workers=0)) == 1
    assert worker_count(Settings(storage=url, workers=3)) == 3


def test_postgresql_runs_one_worker_per_core_on_auto() -> None:
    for url in ("postgresql://u@127.0.0.1/db", "postgres://u@127.0.0.1/db"):
        deployment = deployment_for(url)
        assert deployment.shared_by_processes
        assert deployment.default_workers == (os.cpu_count() or 1)


def test_an_unregistered_scheme_runs_in_one_process() -> None:
    assert deployment_for("nosuchscheme://x") is ONE_PROCESS


def test_sql_maintenance_runs_in_the_first_worker_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/d.db"
    maintains = []
    for index in range(3):
        storage = open_storage(url)
        deployment_for(url).configure_worker(storage, index, 3)
        assert isinstance(storage, SQLStorage)
        maintains.append(storage.maintenance)
    assert maintains == [True, False, False]


def test_the_backend_interface_has_no_deployment_hooks() -> None:
    for name in ("shared_by_processes", "default_workers", "configure_worker"):
        assert not hasattr(RemoteStorage, name), name


def test_a_deployment_runs_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="default_workers must be at least 1"):
        Deployment(default_workers=0)
