"""The in-memory backend's batch append in C stores exactly what the pure-Python loop stores."""

from __future__ import annotations

import asyncio
import struct
from array import array

import pytest

from remote_storage.backends import memory
from remote_storage.chunks import SAMPLES_PER_CHUNK
from remote_storage.matchers import Matcher, MatchType
from remote_storage.storage import Context, Labels, Query, SampleBatch, TimeSeries, WriteRequest

pytestmark = pytest.mark.skipif(memory._append_next is None, reason="the C batch append is not built")

SERIES = 50
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def label_set(key: int) -> Labels:
    return Labels((("__name__", "m"), ("i", f"{key:03d}")))


def batch(keys: list[int], timestamps: list[int], values: list[float]) -> WriteRequest:
    return WriteRequest(
        batch=SampleBatch(keys, array("q", timestamps).tobytes(), array("d", values).tobytes(), label_set)
    )


def requests() -> list[WriteRequest]:
    """Rounds of one sample per series (some skipped), past a chunk's length; a late and a repeated round."""
    found = []
    for round_ in range(SAMPLES_PER_CHUNK + 30):
        keys = [k for k in range(SERIES) if (k + round_) % 7]
        values = [STALE_NAN if (k * round_) % 11 == 3 else -0.0 if k == 5 else k + round_ / 3 for k in keys]
        found.append(batch(keys, [1_000 * round_ + k for k in keys], values))
    found.append(batch([1, 2], [500, 1_500], [9.0, 9.5]))  # late: the general path
    found.append(batch([3, 3], [10_000_000, 10_000_001], [1.0, 2.0]))  # one series twice
    return found


def stored(use_c: bool) -> list[TimeSeries]:
    async def run() -> list[TimeSeries]:
        storage = memory.MemoryStorage()
        for request in requests():
            await storage.write(Context(), request)
        query = Query(0, 1 << 40, (Matcher(MatchType.EQ, "__name__", "m"),))
        return [s async for s in storage.process_query(Context(), query)]

    saved = memory._append_next
    if not use_c:
        memory._append_next = None
    try:
        return asyncio.run(run())
    finally:
        memory._append_next = saved


def test_c_and_python_store_the_same_samples() -> None:
    c_result, python_result = stored(True), stored(False)
    assert len(c_result) == SERIES
    assert c_result == python_result  # TimeSeries equality compares values bit by bit


def test_a_row_that_is_not_next_stores_nothing() -> None:
    head = memory._append_next
    assert head is not None
    series = [memory.Series(label_set(k)) for k in range(3)]
    newest = array("q", [10, 10, 10])
    timestamps, values = array("q", [11, 12, 10]), array("d", [1.0, 2.0, 3.0])
    assert head(series, newest, [0, 1, 2], timestamps, values, SAMPLES_PER_CHUNK) is None
    assert list(newest) == [10, 10, 10]
    assert all(not s.head_ts for s in series)
    assert head(series, newest, [0, 1, 5], timestamps, values, SAMPLES_PER_CHUNK) is None  # no such id
    full = head(series, newest, [0, 1], timestamps[:2], values[:2], 1)
    assert full == series[:2]
    assert list(newest) == [11, 12, 10]
    assert list(series[1].head_ts) == [12] and list(series[1].head_values) == [2.0]
    with pytest.raises(ValueError, match="do not match"):
        head(series, newest, [0], timestamps, values, SAMPLES_PER_CHUNK)


def test_a_series_named_twice_is_stored_in_order_or_not_at_all() -> None:
    head = memory._append_next
    assert head is not None
    series = [memory.Series(label_set(k)) for k in range(2)]
    newest = array("q", [10, 10])
    rising = head(series, newest, [0, 1, 0], array("q", [11, 11, 12]), array("d", [1.0, 2.0, 3.0]), 2)
    assert rising == [series[0]]
    assert list(newest) == [12, 11]
    assert list(series[0].head_ts) == [11, 12] and list(series[0].head_values) == [1.0, 3.0]
    # The second row of series 1 is not after its first: nothing is stored, newest is as it was.
    repeated = head(series, newest, [1, 0, 1], array("q", [13, 13, 13]), array("d", [4.0, 5.0, 6.0]), 2)
    assert repeated is None
    assert list(newest) == [12, 11]
    assert list(series[1].head_ts) == [11] and list(series[0].head_ts) == [11, 12]
