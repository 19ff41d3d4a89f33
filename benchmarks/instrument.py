"""remote_storage.instrument against prometheus_client, in the same process and run.

Run from the repository root (prometheus_client comes with the ``test`` extra)::

    python benchmarks/instrument.py            # about a minute
    python benchmarks/instrument.py --quick    # a few seconds, rougher numbers

Every operation is timed with :mod:`timeit` (garbage collector off, names
bound as locals): 7 runs of 200,000 operations each (``--quick``: 3 of
20,000), this library's and prometheus_client's runs alternating so that
other work on the machine disturbs both alike, keeping each side's fastest
run. The cost of an empty loop, measured the same way, is subtracted, so
the figures are the cost of the operation itself. ``--runs N`` repeats the
whole measurement and reports the median of each figure. Both libraries do the
same thing: the same metric names and label values, the same bucket bounds,
and for exposition byte-identical output (checked before timing;
prometheus_client's ``_created`` series are turned off for the 0.0.4 rows,
since this library leaves them out of 0.0.4).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import prometheus_client
from prometheus_client.openmetrics.exposition import generate_latest as pc_generate_openmetrics

from remote_storage import instrument

CHILDREN = 100_000


@dataclass
class Row:
    operation: str
    ours: float  # seconds per operation
    theirs: float
    target: float  # the ratio ours/theirs must stay at or under
    baseline: str = "the same operation"

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs


def _timer(stmt: str, objects: dict[str, Any]) -> timeit.Timer:
    # Bound in the setup, the objects are local variables of the timed loop.
    setup = "; ".join(f"{name} = objects[{name!r}]" for name in objects) or "pass"
    return timeit.Timer(stmt, setup, globals={"objects": objects})


def compare(
    ours: tuple[str, dict[str, Any]], theirs: tuple[str, dict[str, Any]], number: int, repeat: int
) -> tuple[float, float]:
    """Seconds per operation of each ``(statement, objects)``, the empty loop subtracted.

    The runs alternate (empty loop, ours, theirs, empty loop, ...), so a burst
    of other work on the machine hits both sides alike; each keeps its
    fastest run.
    """
    timers = [_timer("pass", ours[1]), _timer(*ours), _timer(*theirs)]
    best = [float("inf")] * len(timers)
    for _ in range(repeat):
        best = [min(fastest, timer.timeit(number)) for fastest, timer in zip(best, timers, strict=True)]
    empty, mine, other = best
    return max(mine - empty, 0.0) / number, max(other - empty, 0.0) / number


def compare_calls(
    ours: Callable[[], object], theirs: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Seconds per call of two slow functions, alternating; the fastest call of each."""
    mine = other = float("inf")
    for _ in range(repeat):
        mine = min(mine, timeit.Timer(ours).timeit(1))
        other = min(other, timeit.Timer(theirs).timeit(1))
    return mine, other


def hot_path_objects(library: Any) -> dict[str, Any]:
    registry = library.CollectorRegistry() if library is prometheus_client else library.Registry()
    requests = library.Counter("bench_requests", "Requests.", ["method", "code"], registry=registry)
    latency = library.Histogram("bench_latency_seconds", "Latency.", registry=registry)
    return {"family": requests, "child": requests.labels("get", "200"), "histogram": latency}


def exposition_registry(library: Any) -> Any:
    registry = library.CollectorRegistry() if library is prometheus_client else library.Registry()
    family = library.Counter("bench_exposed", "Children to expose.", ["path", "code"], registry=registry)
    for index in range(CHILDREN):
        family.labels(f"/api/v1/items/{index}", str(200 + index % 5)).inc(index)
    return registry


def measure(number: int, repeat: int) -> list[Row]:
    ours, theirs = hot_path_objects(instrument), hot_path_objects(prometheus_client)
    local = ours["child"].local()
    rows = []
    for operation, stmt in [
        ("inc() on a bound child", "child.inc()"),
        ("labels(...).inc()", "family.labels('get', '200').inc()"),
        ("Histogram.observe()", "histogram.observe(0.3)"),
    ]:
        rows.append(Row(operation, *compare((stmt, ours), (stmt, theirs), number, repeat), 0.5))
    rows.append(
        Row(
            "local counter inc()",
            *compare(("local.inc()", {"local": local}), ("child.inc()", theirs), number, repeat),
            0.1,
            "prometheus_client inc() on a bound child",
        )
    )
    local.flush()

    our_registry, their_registry = exposition_registry(instrument), exposition_registry(prometheus_client)
    prometheus_client.disable_created_metrics()
    try:
        if instrument.generate_latest(our_registry) != prometheus_client.generate_latest(their_registry):
            raise SystemExit("the two libraries' 0.0.4 outputs differ; the comparison would be unfair")
        slow_repeat = max(3, repeat // 2)
        rows.append(
            Row(
                f"exposition of {CHILDREN:,} children, text 0.0.4",
                *compare_calls(
                    lambda: instrument.generate_latest(our_registry),
                    lambda: prometheus_client.generate_latest(their_registry),
                    slow_repeat,
                ),
                0.5,
            )
        )
    finally:
        prometheus_client.enable_created_metrics()
    rows.append(
        Row(
            f"exposition of {CHILDREN:,} children, OpenMetrics",
            *compare_calls(
                lambda: instrument.generate_openmetrics(our_registry),
                lambda: pc_generate_openmetrics(their_registry),
                slow_repeat,
            ),
            0.5,
        )
    )
    return rows


def format_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:,.1f} ms"
    return f"{seconds * 1e9:,.0f} ns"


def table(rows: list[Row]) -> str:
    header = ("operation", "remote_storage", "prometheus_client", "ratio", "target", "")
    lines = [header]
    for row in rows:
        verdict = "ok" if row.ratio <= row.target else "MISSED"
        lines.append(
            (
                row.operation,
                format_time(row.ours),
                format_time(row.theirs),
                f"{row.ratio:.3f}",
                f"<= {row.target}",
                verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        out.append("| " + " | ".join(cells) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (rougher numbers)")
    parser.add_argument("--runs", type=int, default=1, help="measure this many times; report the median")
    args = parser.parse_args()
    number, repeat = (20_000, 3) if args.quick else (200_000, 7)
    measured = [measure(number, repeat) for _ in range(args.runs)]
    rows = [
        Row(
            first.operation,
            statistics.median(run[i].ours for run in measured),
            statistics.median(run[i].theirs for run in measured),
            first.target,
            first.baseline,
        )
        for i, first in enumerate(measured[0])
    ]
    runs = f"median of {args.runs} runs, " if args.runs > 1 else ""
    print(
        f"Python {sys.version.split()[0]}, prometheus_client {version('prometheus_client')}, "
        f"{os.cpu_count()} CPUs; {runs}each the fastest of {repeat} x {number:,} operations "
        f"(exposition: of {max(3, repeat // 2)} calls)"
    )
    print(table(rows))
    for row in rows:
        if row.baseline != "the same operation":
            print(f"({row.operation} is compared with {row.baseline})")


if __name__ == "__main__":
    main()
