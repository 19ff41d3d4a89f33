"""What a run did: counts, errors, latency percentiles, and the summary printed at the end.

:class:`Tally` is updated by the sender after every request; the
:class:`Summary` made from it at the end prints as text
(:meth:`Summary.format`) or as JSON (:meth:`Summary.to_json`).

>>> LatencyStats.of([0.004, 0.001, 0.003, 0.002]).p50
0.002
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ErrorSample", "GenerationStats", "LatencyStats", "Summary", "Tally", "format_rate", "percentile"]

#: Like Prometheus, keep at most this much of an error response body.
ERROR_BODY_LIMIT = 1024


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``ordered``: the smallest value with ``fraction`` at or below it.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    if not ordered:
        raise ValueError("no values")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rank = max(1, math.ceil(fraction * len(ordered) - 1e-9))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencyStats:
    """Request latency in seconds (send to response fully read); all None when there were no requests."""

    count: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, latencies: Iterable[float]) -> LatencyStats:
        ordered = sorted(latencies)
        if not ordered:
            return cls()
        return cls(
            count=len(ordered),
            mean=math.fsum(ordered) / len(ordered),
            p50=percentile(ordered, 0.50),
            p90=percentile(ordered, 0.90),
            p99=percentile(ordered, 0.99),
            max=ordered[-1],
        )


@dataclass
class ErrorSample:
    """How often one kind of failure happened, and what the first one said."""

    count: int
    first: str


@dataclass
class GenerationStats:
    """Request bodies rendered ahead of the measured window and during it.

    ``waited_seconds`` is the time during which senders waited for the
    generator with nothing to send: zero means it never limited the offered load.
    """

    ahead_requests: int = 0
    ahead_samples: int = 0
    ahead_bytes: int = 0
    ahead_seconds: float = 0.0
    during_run_requests: int = 0
    waited_seconds: float = 0.0

    @property
    def ahead_samples_per_second(self) -> float:
        return self.ahead_samples / self.ahead_seconds if self.ahead_seconds > 0 else 0.0


@dataclass
class Tally:
    """Running totals of a load run; the sender records every request here."""

    requests: int = 0
    requests_ok: int = 0
    samples_sent: int = 0
    samples_accepted: int = 0
    bytes_sent: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    non_2xx: dict[int, ErrorSample] = field(default_factory=dict)
    transport_errors: dict[str, ErrorSample] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.requests - self.requests_ok

    def response(
        self, status: int, body: bytes, latency: float, samples: int, accepted: int, size: int
    ) -> None:
        """A request that got an answer; ``accepted`` is how many of its ``samples`` were written."""
        self._sent(latency, samples, size)
        self.samples_accepted += accepted
        if 200 <= status < 300:
            self.requests_ok += 1
            return
        text = body[:ERROR_BODY_LIMIT].decode("utf-8", "replace").strip()
        _count(self.non_2xx, status, text)

    def failure(self, kind: str, message: str, latency: float, samples: int, size: int) -> None:
        """A request that got no answer (connection error, timeout)."""
        self._sent(latency, samples, size)
        _count(self.transport_errors, kind, message)

    def _sent(self, latency: float, samples: int, size: int) -> None:
        self.requests += 1
        self.samples_sent += samples
        self.bytes_sent += size
        self.latencies.append(latency)


def _count(errors: dict[Any, ErrorSample], key: Any, message: str) -> None:
    sample = errors.get(key)
    if sample is None:
        errors[key] = ErrorSample(1, message)
    else:
        sample.count += 1


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def format_rate(rate: float, unit: str = "samples/s") -> str:
    """``"2.47 M samples/s"`` from 100,000 on, ``"18,580 samples/s"`` below."""
    return f"{rate / 1e6:.2f} M {unit}" if rate >= 1e5 else f"{rate:,.0f} {unit}"


@dataclass(frozen=True)
class Summary:
    """The outcome of a run. ``ok`` (every request answered 2xx) decides the exit code."""

    url: str
    workload: dict[str, Any]
    duration_seconds: float
    tally: Tally
    latency: LatencyStats
    generation: GenerationStats

    @classmethod
    def of(
        cls,
        url: str,
        workload: dict[str, Any],
        duration_seconds: float,
        tally: Tally,
        generation: GenerationStats,
    ) -> Summary:
        return cls(url, workload, duration_seconds, tally, LatencyStats.of(tally.latencies), generation)

    @property
    def ok(self) -> bool:
        return self.tally.failed == 0

    def to_json(self) -> dict[str, Any]:
        """The summary as plain JSON types; key names are a stable interface for scripts."""
        t, seconds = self.tally, self.duration_seconds
        generation = asdict(self.generation)
        generation["ahead_samples_per_second"] = self.generation.ahead_samples_per_second
        return {
            "url": self.url,
            "workload": self.workload,
            "ok": self.ok,
            "duration_seconds": seconds,
            "requests": t.requests,
            "requests_ok": t.requests_ok,
            "requests_failed": t.failed,
            "samples_sent": t.samples_sent,
            "samples_accepted": t.samples_accepted,
            "bytes_sent": t.bytes_sent,
            "requests_per_second": _rate(t.requests, seconds),
            "samples_per_second": _rate(t.samples_accepted, seconds),
            "offered_samples_per_second": _rate(t.samples_sent, seconds),
            "latency_seconds": asdict(self.latency),
            "non_2xx": {
                str(status): {"count": e.count, "first_body": e.first} for status, e in t.non_2xx.items()
            },
            "transport_errors": {
                kind: {"count": e.count, "first_message": e.first} for kind, e in t.transport_errors.items()
            },
            "generation": generation,
        }

    def format(self) -> str:
        """The summary as text for a terminal."""
        t, g, lat, seconds = self.tally, self.generation, self.latency, self.duration_seconds
        offered, accepted = _rate(t.samples_sent, seconds), _rate(t.samples_accepted, seconds)
        lines = [
            f"target     {self.url}",
            f"workload   {self.workload['description']}",
            f"generated  {g.ahead_requests:,} bodies ({g.ahead_bytes / 2**20:,.1f} MiB) ahead in "
            f"{g.ahead_seconds:.2f} s ({format_rate(g.ahead_samples_per_second)}), "
            f"{g.during_run_requests:,} during the run; senders waited {g.waited_seconds:.2f} s for bodies",
            f"requests   {t.requests:,} in {seconds:.2f} s ({_rate(t.requests, seconds):,.0f}/s): "
            f"{t.requests_ok:,} 2xx, {t.failed:,} failed",
            f"samples    {t.samples_sent:,} sent ({format_rate(offered)} offered), "
            f"{t.samples_accepted:,} accepted ({format_rate(accepted)})",
            f"latency    p50 {_ms(lat.p50)}  p90 {_ms(lat.p90)}  p99 {_ms(lat.p99)}  max {_ms(lat.max)}",
        ]
        for status, error in sorted(t.non_2xx.items()):
            lines.append(f"HTTP {status}   {error.count:,} requests; first body: {error.first!r}")
        for kind, error in sorted(t.transport_errors.items()):
            lines.append(f"{kind}   {error.count:,} requests; first: {error.first}")
        return "\n".join(lines)
