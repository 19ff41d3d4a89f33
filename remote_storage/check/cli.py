"""``remote-storage check URL``: the arguments, and one run printed as a table or JSON.

Exit status: 0 when every ``must`` check passed (with ``--strict``: every
check), 1 otherwise, 2 for unusable options.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from remote_storage.check.client import (
    READ_PATH,
    WRITE_PATH,
    Endpoint,
    basic_auth_header,
    bearer_header,
    client_ssl_context,
    endpoint_url,
)
from remote_storage.check.report import format_table, passed, to_json
from remote_storage.check.suite import PROTOCOLS, run_checks

__all__ = ["add_parser", "build_parser", "main", "run"]

DESCRIPTION = f"""\
Run a conformance round trip against a remote-write/remote-read endpoint:
write uniquely labelled series (remote write 1.0 and 2.0), read them back in
both response types (SAMPLES, STREAMED_XOR_CHUNKS) with every matcher kind,
compare every value bit for bit (the stale marker included), check that
several queries are answered in order, and send malformed input.

URL is the endpoint's base (http://HOST:PORT gets {WRITE_PATH} and
{READ_PATH}); --write-url and --read-url name the two separately.

Each check is a row: pass, fail (with the reason), unsupported (an optional
feature the endpoint lacks: remote write 2.0, streamed reads) or skipped.
"must" rows are what Prometheus relies on; "info" rows show behaviour that
differs between receivers. Exit status: 0 when no "must" row failed (with
--strict: no row failed and none is unsupported), 1 otherwise, 2 for bad
options.
"""


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(
            f"invalid header {text!r}: use NAME=VALUE, e.g. X-Scope-OrgID=team-a"
        )
    return name.strip(), value


def _positive(text: str) -> float:
    try:
        value = float(text.rstrip("s"))
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: use seconds, e.g. 10 or 2.5")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the check arguments to ``parser``."""
    parser.add_argument(
        "url", metavar="URL", nargs="?", help="base URL of the endpoint, e.g. http://127.0.0.1:9201"
    )
    target = parser.add_argument_group("endpoint")
    target.add_argument("--write-url", metavar="URL", help=f"remote-write URL [URL + {WRITE_PATH}]")
    target.add_argument("--read-url", metavar="URL", help=f"remote-read URL [URL + {READ_PATH}]")
    target.add_argument(
        "--protocol",
        choices=[*PROTOCOLS, "both"],
        default="both",
        help="remote-write version(s) to check; 2.0 is reported unsupported by a 1.0-only receiver [both]",
    )
    target.add_argument("--tenant", metavar="NAME", help="send this tenant in --tenant-header")
    target.add_argument(
        "--tenant-header", metavar="NAME", default="X-Scope-OrgID", help="the tenant's header [X-Scope-OrgID]"
    )
    target.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra request header (repeatable)",
    )
    target.add_argument(
        "--timeout", metavar="SECONDS", type=_positive, default=30.0, help="time limit of one request [30]"
    )
    auth = parser.add_argument_group("authentication and TLS")
    auth.add_argument(
        "--bearer-token-file", metavar="FILE", type=Path, help="send the token in this file as a bearer token"
    )
    auth.add_argument(
        "--basic-auth",
        metavar="USER:PASSWORD_FILE",
        help="send basic auth: USER and the first line of PASSWORD_FILE",
    )
    auth.add_argument(
        "--ca-file", metavar="FILE", help="CA certificates to verify an https:// endpoint [the system's]"
    )
    auth.add_argument("--cert-file", metavar="FILE", help="client certificate (PEM) for https://")
    auth.add_argument("--key-file", metavar="FILE", help="its private key (PEM) [in --cert-file]")
    auth.add_argument(
        "--insecure-skip-verify", action="store_true", help="do not verify the endpoint's certificate or name"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the results as JSON")
    output.add_argument(
        "--strict", action="store_true", help="fail on any failed row (info included) and on unsupported rows"
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` subcommand to the ``remote-storage`` command's subparsers."""
    parser = subparsers.add_parser(
        "check",
        help="check a remote-write/remote-read endpoint's conformance",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    parser.set_defaults(usage_error=parser.error)


def build_parser() -> argparse.ArgumentParser:
    """A ``remote-storage`` parser with just this subcommand (what :func:`main` parses)."""
    parser = argparse.ArgumentParser(prog="remote-storage")
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def endpoint_from(args: argparse.Namespace) -> Endpoint:
    """The endpoint the arguments describe; ValueError or OSError names a bad one."""
    if args.url is None and (args.write_url is None or args.read_url is None):
        raise ValueError("give URL, or both --write-url and --read-url")
    write_url = endpoint_url(args.write_url or args.url, WRITE_PATH)
    read_url = endpoint_url(args.read_url or args.url, READ_PATH)
    headers = dict(args.header)
    if args.tenant is not None:
        headers[args.tenant_header] = args.tenant
    if args.bearer_token_file is not None and args.basic_auth is not None:
        raise ValueError("give --bearer-token-file or --basic-auth, not both")
    if args.bearer_token_file is not None:
        headers["Authorization"] = bearer_header(args.bearer_token_file)
    if args.basic_auth is not None:
        headers["Authorization"] = basic_auth_header(args.basic_auth)
    context = None
    if "https" in (write_url[:5], read_url[:5]) or args.ca_file or args.cert_file:
        context = client_ssl_context(args.ca_file, args.cert_file, args.key_file, args.insecure_skip_verify)
    return Endpoint(write_url, read_url, headers, context, args.timeout)


def run(args: argparse.Namespace) -> int:
    """Run the ``check`` subcommand with parsed ``args``; returns the exit status."""
    try:
        endpoint = endpoint_from(args)
    except (ValueError, OSError) as exc:
        print(f"remote-storage check: error: {exc}", file=sys.stderr)
        return 2
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    run_id = secrets.token_hex(6)
    results = run_checks(endpoint, run_id, int(time.time() * 1000), protocols)
    ok = passed(results, args.strict)
    if args.json:
        about = {"write_url": endpoint.write_url, "read_url": endpoint.read_url, "run_id": run_id}
        print(json.dumps(to_json(results, args.strict, **about), indent=2))
    else:
        print(f"remote-storage check: write {endpoint.write_url}, read {endpoint.read_url}, run id {run_id}")
        print(format_table(results, args.strict))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m remote_storage.check URL [options]``: ``remote-storage check`` on its own."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    return run(build_parser().parse_args(["check", *arguments]))
