"""The ``remote-storage`` command.

``remote-storage serve`` runs the service until SIGINT or SIGTERM, then stops
taking requests, lets running ones finish and closes the backend.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from remote_storage import __version__
from remote_storage.backends import UnknownBackend, open_storage
from remote_storage.config import ConfigError, add_arguments, settings_from
from remote_storage.loadgen import cli as loadgen_cli
from remote_storage.serving import LOG_FORMAT, run, run_workers, serve, worker_count

__all__ = ["main", "run", "serve"]

log = logging.getLogger("remote_storage")


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
    loadgen_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "loadgen":  # takes none of the serve settings
        return loadgen_cli.run(args)
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
            count = worker_count(settings, storage)
            if count > 1:
                return run_workers(settings, count, LOG_FORMAT)
            asyncio.run(serve(storage, settings))
        except (UnknownBackend, ValueError) as exc:
            log.error("cannot start: %s", exc)
            return 2
        except OSError as exc:
            log.error("cannot listen on %s: %s", settings.listen, exc)
            return 1
    return 0
