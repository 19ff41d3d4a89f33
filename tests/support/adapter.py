"""The service under test (``python -m remote_storage serve``) as a subprocess."""

from __future__ import annotations

import os
import ssl
import sys

from .net import free_port, wait_http_ok
from .procs import ManagedProcess, Processes

__all__ = ["Adapter", "start_adapter"]

# Settings a developer's shell might carry; tests pass everything explicitly.
ENV_PREFIX = "REMOTE_STORAGE_"


class Adapter:
    """A started adapter and its endpoints."""

    def __init__(
        self, process: ManagedProcess, port: int, storage: str, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.process = process
        self.port = port
        self.storage = storage
        #: How tests reach an adapter serving HTTPS (None: plain HTTP).
        self.ssl_context = ssl_context
        self.address = f"127.0.0.1:{port}"
        self.url = f"{'https' if ssl_context is not None else 'http'}://{self.address}"
        self.write_url = f"{self.url}/api/v1/write"
        self.read_url = f"{self.url}/api/v1/read"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``/-/ready`` until 200; fail early with the log if the process exits."""
        wait_http_ok(f"{self.url}/-/ready", timeout, alive=self.process.check_alive, context=self.ssl_context)


def start_adapter(
    processes: Processes,
    storage: str = "memory://",
    *,
    name: str = "adapter",
    extra_args: tuple[str, ...] = (),
    ssl_context: ssl.SSLContext | None = None,
    open_files: int | None = None,
    env: dict[str, str] | None = None,
) -> Adapter:
    """Start ``remote_storage serve`` on a free loopback port; does not wait for it.

    Pass ``ssl_context`` (how to reach it) when ``extra_args`` turn HTTPS on.
    ``open_files`` runs it with that open-file limit (soft and hard), through ``prlimit``.
    ``env`` adds environment variables (the caller's ``REMOTE_STORAGE_*`` are never passed on).
    """
    port = free_port()
    limit = [] if open_files is None else ["prlimit", f"--nofile={open_files}:{open_files}"]
    argv = [
        *limit,
        sys.executable,
        "-m",
        "remote_storage",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--storage",
        storage,
        *extra_args,
    ]
    environ = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    environ["PYTHONUNBUFFERED"] = "1"
    environ.update(env or {})
    process = processes.start(name, argv, env=environ)
    return Adapter(process, port, storage, ssl_context)
