"""Running the server: one process (``serve``, ``run``) or several on one port (``--workers N``).

Python runs one core per process, so the service scales on one machine by
running N processes that all listen on the same address (``SO_REUSEPORT``:
the kernel spreads connections over them). That needs a backend that several
processes can share (SQLite, PostgreSQL); the in-memory backend keeps data
per process, so it runs one. What a backend allows and wants here is its
:class:`~remote_storage.deployment.Deployment` (the SQL backend's worker 0
also runs the background maintenance, compaction and retention; the others
only serve requests).

The parent process only supervises: it forwards SIGTERM/SIGINT to the
workers and waits for them; if one dies, it stops the others and exits 1.
A worker whose parent dies (even by SIGKILL, which the parent cannot
forward) stops as on SIGTERM, gracefully: see :func:`exit_with_parent`.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from aiohttp import web

from remote_storage import __version__
from remote_storage.backends import InvalidStorageURL, UnknownBackend, deployment_for, open_storage
from remote_storage.config import ConfigError, Settings
from remote_storage.connections import LISTEN_BACKLOG, AcceptErrorLog, GuardedAppRunner, deepen_backlog
from remote_storage.decode_process import use_process
from remote_storage.deployment import Deployment
from remote_storage.errors import CannotOpenStorage
from remote_storage.logs import configure as configure_logs
from remote_storage.native import IMPLEMENTATION
from remote_storage.parent import exit_with_parent
from remote_storage.server import STATE, connection_guard, create_app
from remote_storage.storage import RemoteStorage
from remote_storage.tls import describe_tls, server_ssl_context

__all__ = [
    "check_opens",
    "describe_limits",
    "report_startup_failure",
    "run",
    "run_workers",
    "serve",
    "startup_failure",
    "worker_count",
]

log = logging.getLogger("remote_storage")


def describe_limits(settings: Settings) -> str:
    """The write limits in force, as the flags set them (0: off)."""
    limits = settings.write_limits
    return (
        f"label name {limits.max_label_name_length} B, label value {limits.max_label_value_length} B, "
        f"{limits.max_labels_per_series} labels per series, {limits.max_series_per_request} series and "
        f"{limits.max_samples_per_request} samples per request, {settings.max_active_series} active series "
        f"per tenant, sample age {limits.max_sample_age_ms // 1000} s, future grace "
        f"{limits.future_grace_ms // 1000} s, request body {settings.max_request_bytes} B"
    )


#: Allocations between young-generation collections (CPython's default is 700).
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Make the cyclic garbage collector run far less often in the server.

    A write request of 2,000 series allocates some 10,000 container objects
    that live until the request ends; with CPython's default threshold of 700
    the collector runs a dozen times per request and promotes them, and the
    service spends most of its time collecting (measured: remote-write 1.0
    decoding at 0.22 M samples/s with the defaults, 1.1 M with these). Almost
    nothing here forms reference cycles, so memory is freed by reference
    counting as before; the collector still runs, just in larger steps.
    Objects alive at start-up are frozen out of its scans.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(
    storage: RemoteStorage,
    settings: Settings,
    *,
    reuse_port: bool = False,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve ``storage`` until SIGINT/SIGTERM, then shut down gracefully.

    ``on_listening`` is called once the backend is open and the socket bound.
    """
    tune_gc()
    ssl_context = server_ssl_context(settings)  # None: plain HTTP
    # Signals are taken from the start: one that comes while the backend opens stops the server
    # gracefully once it is open, rather than killing the process half-way.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workers = 2 if reuse_port else 1  # a worker of several, or the only server process
    app = create_app(storage, settings, decode_process=use_process(settings.decoder, workers, os.cpu_count()))
    asyncio.get_running_loop().set_exception_handler(AcceptErrorLog(connection_guard(app)))
    runner = GuardedAppRunner(
        app,
        connection_guard(app),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=10.0,
        keepalive_timeout=settings.idle_timeout,
    )
    await runner.setup()
    try:
        host, port = settings.address
        site = web.TCPSite(
            runner, host, port, reuse_port=reuse_port or None, ssl_context=ssl_context, backlog=LISTEN_BACKLOG
        )
        await site.start()
        deepen_backlog(site)
        scheme = "https" if ssl_context is not None else "http"
        addresses = ", ".join(f"{scheme}://{a[0]}:{a[1]}" for a in runner.addresses)
        log.info(
            "remote-storage %s listening on %s with storage %s",
            __version__,
            addresses,
            storage.describe(),
            extra={
                "fields": {"codec": IMPLEMENTATION, "decoder": "process" if app[STATE].decoder else "inline"}
            },
        )
        auth = app[STATE].auth
        log.info("auth: %s; %s", auth.describe() if auth is not None else "none", describe_tls(settings))
        log.info("write limits: %s", describe_limits(settings))
        if on_listening is not None:
            on_listening()
        await stop.wait()
        log.info("signal received, shutting down")
    finally:
        await runner.cleanup()
    log.info("stopped")


def run(storage: RemoteStorage, settings: Settings | None = None) -> None:
    """Serve a backend object (for example a custom one) until SIGINT/SIGTERM.

    >>> run(MyStorage(), Settings(listen="127.0.0.1:9201"))  # doctest: +SKIP
    """
    settings = settings or Settings()
    if not logging.getLogger().handlers:
        configure_logs(settings.log_level, settings.log_format)
    asyncio.run(serve(storage, settings))


def worker_count(settings: Settings) -> int:
    """The number of processes to run: ``--workers``, or the backend's choice when 0 (auto)."""
    deployment: Deployment = deployment_for(settings.storage)
    if settings.workers:
        if settings.workers > 1 and not deployment.shared_by_processes:
            raise ValueError(
                f"--workers {settings.workers}: the storage {settings.storage!r} keeps data inside one "
                "process; use --workers 1, or a SQL backend"
            )
        return settings.workers
    return deployment.default_workers


def startup_failure(exc: BaseException, settings: Settings) -> str | None:
    """One line naming why the service could not start and what to change; None if unforeseen."""
    if isinstance(exc, CannotOpenStorage | InvalidStorageURL | UnknownBackend | ConfigError):
        return f"cannot start: {exc}"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return (
                f"cannot listen on {settings.listen}: the address is in use by another process; "
                "stop it, or choose another port with --listen"
            )
        if exc.errno == errno.EADDRNOTAVAIL:
            return (
                f"cannot listen on {settings.listen}: no interface of this host has that address (--listen)"
            )
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"cannot listen on {settings.listen}: not permitted (ports below 1024 need privileges)"
        return f"cannot start: {exc.strerror or exc}"
    if isinstance(exc, ValueError):
        return f"cannot start: {exc}"
    return None


async def check_opens(storage: RemoteStorage) -> None:
    """Open the backend and close it again: raises what opening it would raise."""
    await storage.start()
    await storage.close()


def report_startup_failure(exc: BaseException, settings: Settings) -> int:
    """Log why the start failed (one line; the traceback too at debug); the exit status."""
    line = startup_failure(exc, settings)
    if line is None:
        log.error("cannot start: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return 1
    log.error("%s", line)
    log.debug("details of the start-up failure", exc_info=exc)
    return 2 if isinstance(exc, ValueError) else 1  # a setting to change, as for a bad flag


def _worker(
    settings: Settings, index: int, count: int, parent: int, listening: multiprocessing.connection.Connection
) -> None:
    configure_logs(settings.log_level, settings.log_format, process=f"worker-{index}")
    exit_with_parent(parent)

    def ready() -> None:
        listening.send(True)
        listening.close()

    try:
        storage = open_storage(settings.storage, retention=settings.retention or None)
        deployment_for(settings.storage).configure_worker(storage, index, count)
        asyncio.run(serve(storage, settings, reuse_port=True, on_listening=ready))
    except Exception as exc:
        sys.exit(report_startup_failure(exc, settings))


def run_workers(settings: Settings, count: int) -> int:
    """Start ``count`` worker processes and supervise them until a signal; the exit code.

    The parent says the workers are listening once each has bound the port
    and opened its backend; a worker that fails first says why itself.
    """
    if settings.address[1] == 0:
        raise ValueError("--workers needs a fixed port: with port 0 every worker would listen elsewhere")
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe(duplex=False) for _ in range(count)]
    workers = [
        context.Process(
            target=_worker,
            args=(settings, i, count, os.getpid(), pipes[i][1]),
            name=f"remote-storage-worker-{i}",
        )
        for i in range(count)
    ]
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in workers:
        process.start()
    for _, sender in pipes:
        sender.close()  # the workers hold their ends; the parent only reads
    waiting = {receiver: i for i, (receiver, _) in enumerate(pipes)}
    failed = False
    remaining = list(workers)
    while remaining:
        ready = multiprocessing.connection.wait([p.sentinel for p in remaining] + list(waiting))
        for receiver in [r for r in ready if r in waiting]:
            try:
                receiver.recv()
            except EOFError:
                pass  # the worker ended before it listened: its exit is handled below
            else:
                del waiting[receiver]
                if not waiting:
                    log.info("%d worker processes listening on %s", count, settings.listen)
            receiver.close()
            waiting.pop(receiver, None)
        for process in [p for p in remaining if not p.is_alive()]:
            remaining.remove(process)
            process.join()
            if process.exitcode != 0 and not stopping:
                log.error("%s exited with status %s; stopping the others", process.name, process.exitcode)
                failed = True
                forward(signal.SIGTERM, None)
    log.info("all workers stopped")
    return 1 if failed else 0
