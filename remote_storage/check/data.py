"""What a check run writes: uniquely labelled series near the current time, and what reading them gives.

Every series carries ``remote_storage_check_run="<run id>"`` (random per
run), so repeated runs against the same store never see each other's data,
and a ``protocol`` label naming the remote-write version that wrote it.
Samples lie a few minutes before now: inside what a Prometheus TSDB head
accepts and far from any receiver's limit on the future.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from remote_storage.storage import Labels, TimeSeries, float_bits, float_from_bits

__all__ = [
    "KINDS",
    "METRIC_PREFIX",
    "NEGATIVE_ZERO",
    "RUN_LABEL",
    "STALE_MARKER",
    "STEP_MS",
    "VALUES",
    "Found",
    "Written",
    "describe_bits",
]

RUN_LABEL = "remote_storage_check_run"
METRIC_PREFIX = "remote_storage_check_"
STEP_MS = 15_000
STALE_MARKER = 0x7FF0000000000002
NEGATIVE_ZERO = 0x8000000000000000
# Value bit patterns written and read back bit for bit, each with a name for the reports.
VALUES: tuple[tuple[int, str], ...] = (
    (0x0000000000000000, "0"),
    (0x3FF8000000000000, "1.5"),
    (0x4340000000000001, "2**53+2"),
    (0x7FEFFFFFFFFFFFFF, "the largest float64"),
    (0x0000000000000001, "the smallest subnormal"),
    (0x7FF0000000000000, "+Inf"),
    (0xFFF0000000000000, "-Inf"),
    (0x7FF8000000000001, "a NaN with a payload"),
    (STALE_MARKER, "the stale marker"),
    (0xBFF0000000000000, "-1"),
)
# The values of the ``kind`` label of the matcher series; one more series has no ``kind``.
KINDS = ("alpha", "beta", "gamma")
# A label value that needs escaping in every text format, and is not ASCII.
AWKWARD_VALUE = 'ü "quoted" \\ \n end'


def describe_bits(bits: int) -> str:
    names = {**dict(VALUES), NEGATIVE_ZERO: "-0"}
    name = names.get(bits)
    return f"0x{bits:016x}" + (f" ({name})" if name else "")


@dataclass(frozen=True)
class Found:
    """One series as written or as read back: labels in the order received, samples as bits."""

    labels: tuple[tuple[str, str], ...]
    timestamps: tuple[int, ...]
    bits: tuple[int, ...]

    @classmethod
    def of(cls, series: TimeSeries) -> Found:
        return cls(tuple(series.labels), tuple(series.timestamps), tuple(map(float_bits, series.values)))

    def within(self, start_ms: int, end_ms: int) -> Found:
        kept = [(t, b) for t, b in zip(self.timestamps, self.bits, strict=True) if start_ms <= t <= end_ms]
        return Found(self.labels, tuple(t for t, _ in kept), tuple(b for _, b in kept))

    def series(self) -> TimeSeries:
        return TimeSeries(Labels(self.labels), list(self.timestamps), [float_from_bits(b) for b in self.bits])


def labels(name: str, run_id: str, protocol: str, extra: Mapping[str, str] | None = None) -> Labels:
    """The sorted label set of a check series."""
    return Labels.from_mapping(
        {"__name__": METRIC_PREFIX + name, RUN_LABEL: run_id, "protocol": protocol, **(extra or {})}
    )


@dataclass(frozen=True)
class Written:
    """The series one remote-write version writes in a run, and their times."""

    run_id: str
    protocol: str
    start_ms: int

    @property
    def values(self) -> Found:
        """Every value of :data:`VALUES`, one per :data:`STEP_MS`, on a series with an awkward label."""
        return Found(
            labels("values", self.run_id, self.protocol, {"note": AWKWARD_VALUE}),
            tuple(self.start_ms + i * STEP_MS for i in range(len(VALUES))),
            tuple(bits for bits, _ in VALUES),
        )

    @property
    def negative_zero(self) -> Found:
        """-0 between two other values: its sign is the only bit that tells it from 0."""
        return Found(
            labels("negative_zero", self.run_id, self.protocol),
            tuple(self.start_ms + i * STEP_MS for i in range(3)),
            (float_bits(1.0), NEGATIVE_ZERO, float_bits(1.0)),
        )

    def kind(self, kind: str) -> Found:
        """A matcher series: ``kind="<kind>"``, or no ``kind`` label for ``""``."""
        extra = {"kind": kind} if kind else {}
        return Found(
            labels("matchers", self.run_id, self.protocol, extra),
            (self.start_ms, self.start_ms + STEP_MS),
            (float_bits(1.0), float_bits(float(len(kind)))),
        )

    def all(self) -> list[Found]:
        return [self.values, self.negative_zero, *(self.kind(k) for k in (*KINDS, ""))]

    @property
    def end_ms(self) -> int:
        return self.start_ms + len(VALUES) * STEP_MS


def as_series(found: Iterable[Found]) -> list[TimeSeries]:
    return [f.series() for f in found]


def sorted_found(found: Sequence[Found]) -> list[Found]:
    return sorted(found, key=lambda f: f.labels)
