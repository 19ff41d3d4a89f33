"""Sample data for the chunk codec tests: floats from bit patterns, and series to encode."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from hypothesis import strategies as st


def floats(patterns: Sequence[int]) -> array[float]:
    """Floats with exactly these bit patterns, in an ``array('d')`` (never touched as floats)."""
    values = array("d")
    values.frombytes(memoryview(array("Q", patterns)).cast("B"))
    return values


@st.composite
def series(
    draw: st.DrawFn, timestamps: st.SearchStrategy[list[int]], patterns: st.SearchStrategy[int]
) -> tuple[list[int], list[int]]:
    """Ordered timestamps and value bit patterns, values often repeated so XOR windows get reused."""
    drawn = draw(timestamps)
    pool = draw(st.lists(patterns, min_size=1, max_size=4))
    size = len(drawn)
    values = draw(st.lists(st.one_of(patterns, st.sampled_from(pool)), min_size=size, max_size=size))
    return drawn, values


@st.composite
def metric_series(draw: st.DrawFn, timestamps: st.SearchStrategy[list[int]]) -> tuple[list[int], list[int]]:
    """Ordered timestamps and the bit patterns of a scraped counter or gauge: values move in small steps.

    Such values share most of their high bits, so the XOR windows, and how
    long each is kept, decide the size of the chunk.
    """
    drawn = draw(timestamps)
    value = draw(st.one_of(st.just(0.0), st.floats(-1e12, 1e12), st.integers(0, 10**9).map(float)))
    steps = st.one_of(
        st.just(0.0),
        st.integers(0, 1000).map(float),
        st.floats(-10.0, 10.0),
        st.sampled_from([0.1, 0.25, 1 / 3, -0.5]),
        st.floats(-1e6, 1e6),
    )
    values = []
    for step in draw(st.lists(steps, min_size=len(drawn), max_size=len(drawn))):
        value += step
        values.append(value)
    return drawn, array("Q", array("d", values).tobytes()).tolist()
