"""The ``remote-storage`` command.

``remote-storage serve`` runs the service until SIGINT or SIGTERM, then stops
taking requests, lets running ones finish and closes the backend.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from remote_storage import __version__
from remote_storage.backends import UnknownBackend, open_storage, redact_url
from remote_storage.config import ConfigError, Settings, add_arguments, settings_from
from remote_storage.server import create_app
from remote_storage.storage import RemoteStorage

__all__ = ["main", "run", "serve"]

log = logging.getLogger("remote_storage")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def serve(storage: RemoteStorage, settings: Settings) -> None:
    """Serve ``storage`` until SIGINT/SIGTERM, then shut down gracefully."""
    app = create_app(storage, settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=10.0)
    await runner.setup()
    try:
        host, port = settings.address
        site = web.TCPSite(runner, host, port)
        await site.start()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remote-storage",
        description="Remote write and remote read storage for Prometheus.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="run the remote write/read server",
        description="Run the server. Every flag can also be set by the environment variable shown.",
    )
    add_arguments(serve_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    if args.command == "serve":
        try:
            storage = open_storage(settings.storage, retention=settings.retention or None)
            asyncio.run(serve(storage, settings))
        except (UnknownBackend, ValueError) as exc:
            log.error("cannot start: %s", exc)
            return 2
        except OSError as exc:
            log.error("cannot listen on %s: %s", settings.listen, exc)
            return 1
    return 0
