"""The ``remote-storage`` command.

``remote-storage serve`` runs the service until SIGINT or SIGTERM, then stops
taking requests, lets running ones finish and closes the backend.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence

from remote_storage import __version__
from remote_storage.auth import DEFAULT_BCRYPT_COST, hash_password, load_auth
from remote_storage.backends import open_storage
from remote_storage.check import cli as check_cli
from remote_storage.config import ConfigError, add_arguments, settings_from
from remote_storage.launch import check_opens, report_startup_failure, run, run_workers, serve, worker_count
from remote_storage.loadgen import cli as loadgen_cli
from remote_storage.logs import configure as configure_logs
from remote_storage.tls import server_ssl_context

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
    serve_parser.set_defaults(usage_error=serve_parser.error)  # a bad serve flag shows serve's usage
    loadgen_cli.add_parser(commands)
    check_cli.add_parser(commands)
    hash_parser = commands.add_parser(
        "hash-password",
        help="print the bcrypt hash of a password read from stdin (for --auth-config)",
        description="Read a password (the first line of stdin, or a prompt on a terminal) and print "
        "its bcrypt hash, the password_hash of a user in the --auth-config file.",
    )
    hash_parser.add_argument(
        "--cost",
        type=int,
        default=DEFAULT_BCRYPT_COST,
        help=f"bcrypt cost factor, 4..31; each step doubles the time a check takes "
        f"[default {DEFAULT_BCRYPT_COST}]",
    )
    return parser


def run_hash_password(cost: int) -> int:
    """``remote-storage hash-password``: the hash on stdout, problems on stderr."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ").encode()
        if getpass.getpass("Repeat: ").encode() != password:
            print("remote-storage hash-password: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.buffer.readline().rstrip(b"\r\n")
    try:
        print(hash_password(password, cost))
    except ValueError as exc:
        print(f"remote-storage hash-password: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "loadgen":  # takes none of the serve settings
        return loadgen_cli.run(args)
    if args.command == "check":  # a client: none of the serve settings either
        return check_cli.run(args)
    if args.command == "hash-password":
        return run_hash_password(args.cost)
    try:
        settings = settings_from(args)
        if args.command == "serve":  # read the auth and TLS files now: a bad one fails before anything starts
            load_auth(settings)
            server_ssl_context(settings)
    except ConfigError as exc:
        args.usage_error(str(exc))
    configure_logs(settings.log_level, settings.log_format)
    if args.command == "serve":
        try:
            storage = open_storage(settings.storage, retention=settings.retention or None)
            count = worker_count(settings)
            if count > 1:
                # Opened once here, so that a backend that cannot open fails as one line, not once
                # per worker; each worker then opens its own.
                asyncio.run(check_opens(storage))
                return run_workers(settings, count)
            asyncio.run(serve(storage, settings))
        except Exception as exc:
            return report_startup_failure(exc, settings)
    return 0
