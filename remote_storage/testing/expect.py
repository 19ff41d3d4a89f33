"""Checks whose failures explain themselves, with or without pytest's assert rewriting.

pytest rewrites ``assert`` statements only in test modules, not in an
installed package such as this one, so a bare ``assert a == b`` here would
fail with an empty ``AssertionError``. Every check of the kit goes through
these helpers instead: the message names the label set, the timestamp and
both values (with their 64 bits, since two NaNs print alike).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from itertools import pairwise

from remote_storage.storage import Histogram, Labels, TimeSeries, float_bits

__all__ = ["describe", "expect", "expect_refused", "expect_series", "series_problems"]

#: problems listed in one failure message; the rest are counted
MAX_PROBLEMS = 8


def expect(condition: bool, message: str) -> None:
    """Raise :class:`AssertionError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def describe(value: float) -> str:
    """A value and its bits: ``nan (0x7FF0000000000002)``."""
    return f"{value!r} (0x{float_bits(value):016X})"


async def expect_refused(error: type[BaseException], action: Awaitable[object], what: str) -> BaseException:
    """Await ``action``; it must raise ``error``. Returns the error raised."""
    try:
        await action
    except error as raised:
        return raised
    except Exception as other:
        raise AssertionError(
            f"{what}: expected {error.__name__}, got {type(other).__name__}: {other}"
        ) from other
    raise AssertionError(f"{what}: expected {error.__name__}, but it returned normally")


def expect_series(found: Sequence[TimeSeries], expected: Iterable[TimeSeries], what: str) -> None:
    """``found`` must hold exactly ``expected``: same series in label order, same samples bit for bit."""
    problems = series_problems(found, list(expected))
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f"\n  ... and {more} more" if more else ""
        raise AssertionError(f"{what}:\n  " + "\n  ".join(shown) + tail)


def series_problems(found: Sequence[TimeSeries], expected: Sequence[TimeSeries]) -> list[str]:
    """Every difference between two query results, one readable line each."""
    problems: list[str] = []
    labels = [s.labels for s in found]
    for before, after in pairwise(labels):
        if after < before:
            problems.append(f"series out of label order: {before} is returned before {after}")
            break
    got: dict[Labels, TimeSeries] = {}
    for series in found:
        if series.labels in got:
            problems.append(f"series {series.labels} returned twice in one result")
        got[series.labels] = series
        if series.chunks:
            problems.append(f"series {series.labels} returned XOR chunks to a query that did not accept them")
    want = {series.labels: series for series in expected}
    for name in sorted(want.keys() - got.keys()):
        problems.append(f"missing series {name} ({_count(want[name])})")
    for name in sorted(got.keys() - want.keys()):
        problems.append(f"unexpected series {name} ({_count(got[name])})")
    for name in sorted(want.keys() & got.keys()):
        problems.extend(_float_problems(name, got[name], want[name]))
        problems.extend(_histogram_problems(name, got[name].histograms, want[name].histograms))
    return problems


def _count(series: TimeSeries) -> str:
    parts = []
    if series.timestamps:
        parts.append(f"{len(series.timestamps)} samples from t={series.timestamps[0]}")
    if series.histograms:
        parts.append(f"{len(series.histograms)} histograms from t={series.histograms[0].timestamp}")
    return ", ".join(parts) or "no samples"


def _float_problems(labels: Labels, got: TimeSeries, want: TimeSeries) -> list[str]:
    problems = []
    times = list(got.timestamps)
    for i in range(1, len(times)):
        if times[i] == times[i - 1]:
            problems.append(
                f"series {labels}: timestamp {times[i]} returned twice "
                f"(values {describe(got.values[i - 1])} and {describe(got.values[i])})"
            )
        elif times[i] < times[i - 1]:
            problems.append(f"series {labels}: samples out of time order ({times[i - 1]} before {times[i]})")
    have = dict(zip(got.timestamps, got.values, strict=True))
    need = dict(zip(want.timestamps, want.values, strict=True))
    for t in sorted(need.keys() | have.keys()):
        if t not in have:
            problems.append(f"series {labels}: missing sample at timestamp {t}, expected {describe(need[t])}")
        elif t not in need:
            problems.append(f"series {labels}: unexpected sample at timestamp {t}, value {describe(have[t])}")
        elif float_bits(have[t]) != float_bits(need[t]):
            problems.append(
                f"series {labels} at timestamp {t}: expected {describe(need[t])}, got {describe(have[t])}"
            )
    return problems


def _histogram_problems(labels: Labels, got: Sequence[Histogram], want: Sequence[Histogram]) -> list[str]:
    problems = []
    times = [h.timestamp for h in got]
    if times != sorted(set(times)):
        problems.append(f"series {labels}: histogram timestamps not strictly increasing: {times}")
    have = {h.timestamp: h for h in got}
    need = {h.timestamp: h for h in want}
    for t in sorted(need.keys() | have.keys()):
        if t not in have:
            problems.append(f"series {labels}: missing histogram at timestamp {t}, expected {need[t]}")
        elif t not in need:
            problems.append(f"series {labels}: unexpected histogram at timestamp {t}: {have[t]}")
        elif have[t] != need[t]:
            problems.append(f"series {labels}: histogram at timestamp {t}: expected {need[t]}, got {have[t]}")
    return problems
