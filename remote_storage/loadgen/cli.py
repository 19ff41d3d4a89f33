"""``remote-storage loadgen URL``: realistic remote-write traffic for load-testing ingestion.

The ``remote-storage`` command adds this subcommand with :func:`add_parser`
and runs it with :func:`run`; ``python -m remote_storage.loadgen`` runs it
on its own (:func:`main`). Exit status: 0 when every request got a 2xx
answer, 1 otherwise, 2 for unusable options.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from remote_storage.loadgen.encoding import MIN_TIMESTAMP_MS, Protocol
from remote_storage.loadgen.progress import Progress
from remote_storage.loadgen.report import Summary
from remote_storage.loadgen.runner import run_load
from remote_storage.loadgen.sender import DEFAULT_REQUESTS, SendOptions
from remote_storage.loadgen.values import ValueMode
from remote_storage.loadgen.workload import Workload, WorkloadSpec
from remote_storage.units import parse_duration, parse_size

__all__ = ["add_parser", "build_parser", "configure", "main", "parse_count", "run"]

WRITE_PATH = "/api/v1/write"
_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}

DESCRIPTION = f"""\
Send realistic remote-write traffic to URL and report what it accepted.

Series look like node_exporter, kube-state-metrics, kubelet and application
targets (a few hundred metric names, one instance and pod per 100 series),
scraped every --interval. Request bodies are rendered and snappy-compressed
before the measured window starts (up to --buffer of them; later ones are
rendered while sending). The run stops after --requests requests or
--duration, whichever comes first (default: {DEFAULT_REQUESTS:,} requests).
Sample time starts in the past, so that the last scrape of a run bounded by
--requests falls at the moment it starts; a run bounded by --duration only
starts at now, and its samples run ahead of the clock.

Exit status: 0 when every request got a 2xx answer, 1 otherwise.
"""


def parse_count(text: str) -> float:
    """``"2000"``, ``"100_000"``, ``"250k"``, ``"1.5M"`` -> a number (k, M, G are powers of 1,000)."""
    match = re.fullmatch(r"\s*(\d[\d_]*(?:\.\d+)?)\s*([kKmMgG]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: use e.g. 2000, 100_000, 250k or 1.5M")
    return float(match.group(1).replace("_", "")) * _SUFFIXES[match.group(2).lower()]


def _whole(text: str) -> int:
    value = parse_count(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise argparse.ArgumentTypeError(
            f"invalid header {text!r}: use NAME=VALUE, e.g. X-Scope-OrgID=team-a"
        )
    return name, value


def write_url(url: str) -> str:
    """``url``, with ``/api/v1/write`` as its path when it has none."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path=WRITE_PATH)
    return urlunsplit(parts)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the loadgen arguments to ``parser``."""
    parser.add_argument(
        "url", metavar="URL", help=f"remote-write URL (a bare http://HOST:PORT gets {WRITE_PATH})"
    )
    workload = parser.add_argument_group("workload")
    workload.add_argument(
        "--series", metavar="N", type=_whole, default=100_000, help="active series [100,000]"
    )
    workload.add_argument(
        "--labels", metavar="N", type=_whole, default=10, help="labels per series, __name__ included [10]"
    )
    workload.add_argument(
        "--series-per-request", metavar="N", type=_whole, default=2_000, help="series per request [2,000]"
    )
    workload.add_argument(
        "--samples-per-series",
        metavar="N",
        type=_whole,
        default=1,
        help="samples of each series per request, consecutive scrapes [1, as Prometheus sends]",
    )
    workload.add_argument(
        "--churn",
        metavar="N",
        type=parse_count,
        default=0.0,
        help="series replaced per minute of sample time [0]",
    )
    workload.add_argument(
        "--protocol",
        choices=[p.value for p in Protocol],
        default=Protocol.V1.value,
        help="remote write version [v1]",
    )
    workload.add_argument(
        "--values",
        choices=[m.value for m in ValueMode],
        default=ValueMode.REALISTIC.value,
        help="realistic: counters that count and gauges that wander; random: uniform [realistic]",
    )
    workload.add_argument(
        "--interval",
        metavar="DURATION",
        type=_duration,
        default=15.0,
        help="scrape interval of the samples [15s]",
    )
    workload.add_argument(
        "--seed",
        metavar="N",
        type=_whole,
        default=0,
        help="different seeds give different series and values [0]",
    )
    sending = parser.add_argument_group("sending")
    sending.add_argument(
        "--concurrency", metavar="N", type=_whole, default=8, help="requests in flight at most [8]"
    )
    sending.add_argument(
        "--rate",
        metavar="SAMPLES_PER_S",
        type=parse_count,
        default=None,
        help="target samples per second, e.g. 250k [as fast as possible]",
    )
    sending.add_argument(
        "--requests",
        metavar="N",
        type=_whole,
        default=None,
        help=f"stop after this many requests [{DEFAULT_REQUESTS:,}]",
    )
    sending.add_argument(
        "--duration", metavar="DURATION", type=_duration, default=None, help="stop after this long, e.g. 5m"
    )
    sending.add_argument(
        "--timeout", metavar="DURATION", type=_duration, default=30.0, help="time limit of one request [30s]"
    )
    sending.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra request header, e.g. X-Scope-OrgID=team-a (repeatable)",
    )
    sending.add_argument(
        "--buffer",
        metavar="SIZE",
        type=_size,
        default=512 * 2**20,
        help="memory for bodies rendered ahead [512MiB]",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    output.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``loadgen`` subcommand to the ``remote-storage`` command's subparsers."""
    parser = subparsers.add_parser(
        "loadgen",
        help="send realistic remote-write load and report what was accepted",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)


def build_parser() -> argparse.ArgumentParser:
    """A ``remote-storage`` parser with just this subcommand (what :func:`main` parses)."""
    parser = argparse.ArgumentParser(prog="remote-storage")
    add_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def _settings(args: argparse.Namespace) -> tuple[WorkloadSpec, SendOptions]:
    options = SendOptions(
        url=write_url(args.url),
        concurrency=args.concurrency,
        rate=args.rate,
        requests=args.requests,
        duration=args.duration,
        timeout=args.timeout,
        headers=dict(args.header),
        buffer_bytes=args.buffer,
    )
    spec = WorkloadSpec(
        series=args.series,
        labels=args.labels,
        series_per_request=args.series_per_request,
        samples_per_series=args.samples_per_series,
        churn=args.churn,
        protocol=Protocol(args.protocol),
        values=ValueMode(args.values),
        interval_ms=round(args.interval * 1000),
        seed=args.seed,
    )
    start = first_scrape_ms(spec, options.request_limit, int(time.time() * 1000))
    return dataclasses.replace(spec, start_ms=start), options


def first_scrape_ms(spec: WorkloadSpec, requests: int | None, now_ms: int) -> int:
    """When the first scrape is, so that the run's last scrape falls at ``now_ms``.

    A run sends sample time faster than it passes: 4,000 requests of 2,000 of
    100,000 series carry 80 scrapes, 20 minutes at 15 s. Starting that far in
    the past keeps every sample at or before now, where any receiver takes
    it (this service refuses samples more than ``--future-grace-period``
    ahead). A run bounded only by ``--duration`` has no known end: it starts
    at now, and sample time runs ahead of the clock as fast as it is sent.
    """
    if requests is None:
        return now_ms
    rounds = -(-requests // spec.requests_per_round)
    span = (rounds * spec.samples_per_series - 1) * spec.interval_ms + spec.interval_ms  # + target offsets
    return max(MIN_TIMESTAMP_MS, now_ms - span)


async def _run_until_signal(workload: Workload, options: SendOptions, progress: Progress | None) -> Summary:
    """Run; the first SIGINT or SIGTERM stops the run gracefully, a second one aborts."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        stop.set()
        for signum in signals:
            loop.remove_signal_handler(signum)

    for signum in signals:
        loop.add_signal_handler(signum, on_signal)
    try:
        return await run_load(workload, options, progress=progress, stop=stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run(args: argparse.Namespace) -> int:
    """Run the ``loadgen`` subcommand with parsed ``args``; returns the exit status."""
    try:
        spec, options = _settings(args)
    except ValueError as exc:
        print(f"remote-storage loadgen: error: {exc}", file=sys.stderr)
        return 2
    workload = Workload(spec)
    progress = None
    if not args.quiet:
        progress = Progress(sys.stderr, options.request_limit)
        print(f"loadgen: {workload.describe()}; rendering bodies ahead ...", file=sys.stderr, flush=True)
    summary = asyncio.run(_run_until_signal(workload, options, progress))
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
        if not args.quiet:
            print(summary.format(), file=sys.stderr)
    else:
        print(summary.format())
    return 0 if summary.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m remote_storage.loadgen URL [options]``: ``remote-storage loadgen`` on its own."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    return run(build_parser().parse_args(["loadgen", *arguments]))
