"""Running the server: one process (``serve``, ``run``) or several on one port (``--workers N``).

Python runs one core per process, so the service scales on one machine by
running N processes that all listen on the same address (``SO_REUSEPORT``:
the kernel spreads connections over them). That needs a backend that several
processes can share (SQLite, PostgreSQL); the in-memory backend keeps data
per process, so it runs one. Worker 0 also runs the backend's background
maintenance (compaction, retention), the others only serve requests.

The parent process only supervises: it forwards SIGTERM/SIGINT to the
workers and waits for them; if one dies, it stops the others and exits 1.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from types import FrameType

from aiohttp import web

from remote_storage import __version__
from remote_storage.backends import open_storage, redact_url
from remote_storage.config import Settings
from remote_storage.connections import LISTEN_BACKLOG, AcceptErrorLog, GuardedAppRunner, deepen_backlog
from remote_storage.server import connection_guard, create_app
from remote_storage.storage import RemoteStorage

__all__ = ["LOG_FORMAT", "run", "run_workers", "serve", "worker_count"]

log = logging.getLogger("remote_storage")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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


async def serve(storage: RemoteStorage, settings: Settings, *, reuse_port: bool = False) -> None:
    """Serve ``storage`` until SIGINT/SIGTERM, then shut down gracefully."""
    tune_gc()
    app = create_app(storage, settings)
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
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=LISTEN_BACKLOG)
        await site.start()
        deepen_backlog(site)
        addresses = ", ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses)
        log.info(
            "remote-storage %s listening on %s with storage %s (%s)",
            __version__,
            addresses,
            redact_url(settings.storage),
            storage.describe(),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
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
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    asyncio.run(serve(storage, settings))


def worker_count(settings: Settings, storage: RemoteStorage) -> int:
    """The number of processes to run: ``--workers``, or the backend's choice when 0 (auto)."""
    if settings.workers:
        if settings.workers > 1 and not storage.shared_by_processes:
            raise ValueError(
                f"--workers {settings.workers}: the storage {settings.storage!r} keeps data inside one "
                "process; use --workers 1, or a SQL backend"
            )
        return settings.workers
    return storage.default_workers()


def _worker(settings: Settings, index: int, count: int, log_format: str) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=log_format.replace("%(name)s", f"worker-{index} %(name)s"),
        stream=sys.stderr,
    )
    storage = open_storage(settings.storage, retention=settings.retention or None)
    storage.configure_worker(index, count)
    asyncio.run(serve(storage, settings, reuse_port=True))


def run_workers(settings: Settings, count: int, log_format: str) -> int:
    """Start ``count`` worker processes and supervise them until a signal; the exit code."""
    if settings.address[1] == 0:
        raise ValueError("--workers needs a fixed port: with port 0 every worker would listen elsewhere")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_worker, args=(settings, i, count, log_format), name=f"remote-storage-worker-{i}"
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
    log.info("started %d worker processes on %s", count, settings.listen)
    failed = False
    remaining = list(workers)
    while remaining:
        multiprocessing.connection.wait([p.sentinel for p in remaining])
        for process in [p for p in remaining if not p.is_alive()]:
            remaining.remove(process)
            process.join()
            if process.exitcode != 0 and not stopping:
                log.error("%s exited with %s; stopping the others", process.name, process.exitcode)
                failed = True
                forward(signal.SIGTERM, None)
    log.info("all workers stopped")
    return 1 if failed else 0
