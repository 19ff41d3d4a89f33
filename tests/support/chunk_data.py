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
