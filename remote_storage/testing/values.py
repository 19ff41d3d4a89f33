"""Test data for backend checks: special float bit patterns, series builders, one-line helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
    Exemplar,
    Histogram,
    Labels,
    Query,
    RemoteStorage,
    ResetHint,
    TimeSeries,
    WriteRequest,
    float_bits,
    float_from_bits,
)

__all__ = [
    "MAX_TIME",
    "MIN_TIME",
    "SPECIAL_VALUES",
    "STALE_NAN_BITS",
    "bits",
    "float_from_bits",
    "histogram_sample",
    "make_series",
    "matcher",
    "run_query",
    "snapshot",
    "write",
]

MIN_TIME = -(2**63)
MAX_TIME = 2**63 - 1

#: The 64 bits of a float (:func:`remote_storage.storage.float_bits`); its inverse is :func:`float_from_bits`.
bits = float_bits

STALE_NAN_BITS = 0x7FF0000000000002
SPECIAL_VALUES = (
    STALE_NAN_BITS,
    0x7FF8000000000001,  # Go's math.NaN()
    0x7FF8000000000000,  # Python's float("nan")
    0xFFF8000000000000,  # negative quiet NaN
    0x7FF0000000000001,  # another signalling NaN
    0x8000000000000000,  # -0.0
    0x0000000000000000,  # +0.0
    0x7FF0000000000000,  # +Inf
    0xFFF0000000000000,  # -Inf
    0x0000000000000001,  # smallest subnormal
    0x7FEFFFFFFFFFFFFF,  # largest finite
)


def make_series(
    labels: Mapping[str, str] | Labels,
    samples: Iterable[tuple[int, float]] = (),
    histograms: Sequence[Histogram] = (),
    exemplars: Sequence[Exemplar] = (),
) -> TimeSeries:
    """A :class:`TimeSeries` from a label set (or mapping) and ``(timestamp, value)`` pairs."""
    pairs = list(samples)
    label_set = labels if isinstance(labels, Labels) else Labels.from_mapping(labels)
    return TimeSeries(label_set, [t for t, _ in pairs], [v for _, v in pairs], histograms, exemplars)


def snapshot(series: Iterable[TimeSeries]) -> list[tuple[str, list[int], list[int], list[object]]]:
    """Series as plain, bit-exact data: comparisons hold for NaNs and -0.0."""
    return [
        (
            str(s.labels),
            list(s.timestamps),
            [bits(v) for v in s.values],
            [h.identity() for h in s.histograms],
        )
        for s in series
    ]


async def write(storage: RemoteStorage, *series: TimeSeries, ctx: Context | None = None) -> None:
    """Write the series in one request."""
    await storage.write(ctx or Context(), WriteRequest(list(series)))


async def run_query(
    storage: RemoteStorage,
    *matchers: Matcher,
    start: int = MIN_TIME,
    end: int = MAX_TIME,
    ctx: Context | None = None,
) -> list[TimeSeries]:
    """Every series ``process_query`` yields for the matchers and range."""
    query = Query(start, end, tuple(matchers))
    return [s async for s in storage.process_query(ctx or Context(), query)]


def matcher(selector: str) -> Matcher:
    """``'a=~"x|y"'`` -> :class:`Matcher`: a tiny parser for the checks' own selectors."""
    for op in ("=~", "!~", "!=", "="):
        name, found, value = selector.partition(op)
        if found:
            return Matcher.parse(name, op, value.strip('"'))
    raise ValueError(selector)


def histogram_sample(
    timestamp: int, count: int = 5, sum_: float = 12.5, *, is_float: bool = False
) -> Histogram:
    """A native-histogram sample: integer (bucket deltas) or float (absolute counts, a gauge)."""
    if is_float:  # absolute bucket counts, a negative schema, a gauge histogram
        return Histogram(
            timestamp=timestamp,
            count=float(count),
            sum=sum_,
            schema=-1,
            zero_threshold=0.001,
            zero_count=1.5,
            is_float=True,
            negative_spans=((-2, 1),),
            negative_buckets=(0.5,),
            positive_spans=((0, 2), (3, 1)),
            positive_buckets=(1.0, 2.0, 0.0),
            reset_hint=ResetHint.GAUGE,
        )
    return Histogram(  # bucket counts as deltas
        timestamp=timestamp,
        count=count,
        sum=sum_,
        schema=3,
        zero_threshold=2.938735877055719e-39,
        zero_count=1,
        positive_spans=((0, 2), (2, 2)),
        positive_buckets=(1, 1, -1, 2),
        reset_hint=ResetHint.NO,
    )
