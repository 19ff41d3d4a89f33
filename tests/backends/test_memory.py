"""The in-memory backend: the conformance suite, plus its index, key cache and URL."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest

from remote_storage.backends import InvalidStorageURL, memory_series, open_storage
from remote_storage.backends.memory import MemoryStorage
from remote_storage.chunks import SAMPLES_PER_CHUNK, chunk_samples, decode_chunk, encode_for_storage
from remote_storage.errors import SampleConflict
from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
    EncodedChunk,
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    MetricType,
    Query,
    TimeSeries,
    WriteRequest,
)
from remote_storage.testing import (
    MAX_TIME,
    MIN_TIME,
    SPECIAL_VALUES,
    STALE_NAN_BITS,
    BackendConformance,
    bits,
    float_from_bits,
    make_series,
    run_query,
    snapshot,
)


class TestMemoryConformance(BackendConformance):
    unsupported = frozenset({"durability"})

    def make_storage(self) -> MemoryStorage:
        return MemoryStorage()


class TestMemoryConformanceWithoutKeyCache(BackendConformance):
    unsupported = frozenset({"durability"})

    def make_storage(self) -> MemoryStorage:
        return MemoryStorage(key_cache_size=0)


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def eq(name: str, value: str) -> Matcher:
    return Matcher.parse(name, "=", value)


async def write(storage: MemoryStorage, *series: TimeSeries, tenant: str = "default") -> None:
    await storage.write(Context(tenant=tenant), WriteRequest(list(series)))


def population(count: int = 1000) -> list[TimeSeries]:
    return [
        make_series({"__name__": "m", "job": f"j{i % 10}", "instance": f"i{i}"}, [(1, 1.0)])
        for i in range(count)
    ]


class CountingDecode:
    """A lazy series' decode function that counts its calls."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = Labels.from_mapping(labels)
        self.calls = 0

    def __call__(self) -> Labels:
        self.calls += 1
        return self.labels

    def series(self, key: object, timestamp: int) -> TimeSeries:
        return TimeSeries.lazy(key, self, [timestamp], [float(timestamp)])


# -- the index -------------------------------------------------------------------


def test_eq_matcher_examines_only_its_postings() -> None:
    storage = MemoryStorage()

    async def body() -> None:
        await write(storage, *population())
        before = storage.series_examined
        found = await run_query(storage, eq("instance", "i7"))
        assert [s.labels.get("instance") for s in found] == ["i7"]
        assert storage.series_examined - before == 1

    run(body)


def test_intersection_examines_only_common_candidates() -> None:
    storage = MemoryStorage()

    async def body() -> None:
        await write(storage, *population())
        before = storage.series_examined
        found = await run_query(storage, eq("job", "j3"), Matcher.parse("instance", "=~", "i1[0-9]"))
        assert [s.labels.get("instance") for s in found] == ["i13"]
        assert storage.series_examined - before == 1  # 100 in job j3, 10 instances i1x: one in both

    run(body)


def test_regex_narrows_by_matching_values() -> None:
    storage = MemoryStorage()

    async def body() -> None:
        await write(storage, *population())
        before = storage.series_examined
        found = await run_query(storage, Matcher.parse("job", "=~", "j1|j2"))
        assert len(found) == 200
        assert storage.series_examined - before == 200
        before = storage.series_examined
        assert await run_query(storage, eq("job", "nope")) == []
        assert await run_query(storage, eq("nolabel", "x")) == []
        assert storage.series_examined == before

    run(body)


def test_matchers_that_match_empty_filter_all_series() -> None:
    storage = MemoryStorage()

    async def body() -> None:
        await write(storage, *population(100), make_series({"__name__": "other"}, [(1, 1.0)]))
        before = storage.series_examined
        found = await run_query(storage, eq("job", ""))
        assert [str(s.labels) for s in found] == ['{__name__="other"}']
        assert storage.series_examined - before == 101

    run(body)


# -- the key cache ---------------------------------------------------------------


def test_known_key_is_not_decoded_again() -> None:
    storage = MemoryStorage()
    decode = CountingDecode({"__name__": "up", "job": "a"})

    async def body() -> None:
        await write(storage, decode.series(("k",), 1))
        assert decode.calls == 1
        await write(storage, decode.series(("k",), 2))
        await write(storage, decode.series(("k",), 3))
        assert decode.calls == 1
        # another key for the same labels: decoded once, then known as well
        await write(storage, decode.series(b"other", 4))
        await write(storage, decode.series(b"other", 5))
        assert decode.calls == 2
        assert storage.series_count() == 1
        (found,) = await run_query(storage, eq("job", "a"))
        assert list(found.timestamps) == [1, 2, 3, 4, 5]

    run(body)


def test_every_key_of_a_new_series_is_remembered() -> None:
    storage = MemoryStorage()
    decode = CountingDecode({"__name__": "up", "job": "b"})
    exemplar = Exemplar(Labels.from_mapping({"trace_id": "t"}), 1.0, 3)

    async def body() -> None:
        await write(storage, decode.series("a", 1), decode.series("b", 2))
        assert decode.calls == 2
        with_exemplar = TimeSeries.lazy("b", decode, [3], [3.0], exemplars=[exemplar])
        await write(storage, decode.series("a", 4), with_exemplar)
        assert decode.calls == 2
        assert storage.exemplars() == [(decode.labels, exemplar)]
        assert (storage.series_count(), storage.sample_count()) == (1, 4)

    run(body)


def test_keys_are_per_tenant() -> None:
    storage = MemoryStorage()
    decode = CountingDecode({"__name__": "up"})

    async def body() -> None:
        await write(storage, decode.series("k", 1), tenant="t1")
        await write(storage, decode.series("k", 1), tenant="t2")
        assert decode.calls == 2
        assert (storage.series_count("t1"), storage.series_count("t2"), storage.series_count()) == (1, 1, 2)

    run(body)


def test_key_cache_is_bounded_and_starts_over_when_full() -> None:
    storage = MemoryStorage(key_cache_size=2)
    decoders = [CountingDecode({"__name__": "s", "n": str(i)}) for i in range(3)]

    async def body() -> None:
        for t, decode in enumerate(decoders):  # k2 finds the cache full: it holds k2 alone after
            await write(storage, decode.series(f"k{t}", 1))
        assert [d.calls for d in decoders] == [1, 1, 1]
        await write(storage, decoders[2].series("k2", 2))  # cached
        assert [d.calls for d in decoders] == [1, 1, 1]
        await write(storage, decoders[1].series("k1", 2))  # forgotten: decoded again
        await write(storage, decoders[0].series("k0", 2))  # forgotten, and the cache starts over
        await write(storage, decoders[0].series("k0", 3))  # cached
        assert [d.calls for d in decoders] == [2, 2, 1]
        assert storage.series_count() == 3
        assert storage.sample_count() == 7

    run(body)


def test_key_cache_off() -> None:
    storage = MemoryStorage(key_cache_size=0)
    decode = CountingDecode({"__name__": "s"})

    async def body() -> None:
        await write(storage, decode.series("k", 1))
        await write(storage, decode.series("k", 2))
        assert decode.calls == 2
        assert storage.series_count() == 1

    run(body)


def test_failed_write_creates_no_series_and_caches_no_key() -> None:
    storage = MemoryStorage()
    known = make_series({"__name__": "known"}, [(1, 1.0)])
    decode = CountingDecode({"__name__": "new"})

    async def body() -> None:
        await write(storage, known)
        with pytest.raises(SampleConflict):
            await write(storage, decode.series("new", 1), make_series({"__name__": "known"}, [(1, 2.0)]))
        assert (storage.series_count(), storage.sample_count()) == (1, 1)
        await write(storage, decode.series("new", 1))
        assert decode.calls == 2
        assert storage.series_count() == 2

    run(body)


# -- storage details -------------------------------------------------------------


def test_late_samples_inside_a_long_series() -> None:
    storage = MemoryStorage()
    labels = {"__name__": "long"}

    async def body() -> None:
        await write(storage, make_series(labels, [(t, float(t)) for t in range(0, 20000, 2)]))
        await write(storage, make_series(labels, [(t, float(t)) for t in range(19999, 0, -2)]))
        await write(storage, make_series(labels, [(t, float(t)) for t in range(5000, 5100)]))  # all stored
        (found,) = await run_query(storage, eq("__name__", "long"))
        assert list(found.timestamps) == list(range(20000))
        assert list(found.values) == [float(t) for t in range(20000)]
        assert storage.sample_count() == 20000

    run(body)


def test_results_are_snapshots() -> None:
    storage = MemoryStorage()
    labels = {"__name__": "snap"}

    async def body() -> None:
        await write(storage, make_series(labels, [(10, 1.0), (30, 3.0)]))
        (found,) = await run_query(storage, eq("__name__", "snap"))
        await write(storage, make_series(labels, [(20, 2.0), (40, 4.0)]))
        assert list(found.timestamps) == [10, 30]

    run(body)


def test_stale_marker_bits_in_storage() -> None:
    storage = MemoryStorage()
    stale = 0x7FF0000000000002

    async def body() -> None:
        await write(storage, make_series({"__name__": "s"}, [(1, float_from_bits(stale))]))
        (found,) = await run_query(storage, eq("__name__", "s"))
        assert bits(found.values[0]) == stale

    run(body)


def test_histogram_conflict_reports_the_series() -> None:
    storage = MemoryStorage()
    one = Histogram(timestamp=5, count=1, sum=1.0, schema=0, zero_threshold=0.0, zero_count=0)
    two = Histogram(timestamp=5, count=2, sum=3.0, schema=0, zero_threshold=0.0, zero_count=0)

    async def body() -> None:
        await write(storage, make_series({"__name__": "h"}, histograms=[one]))
        with pytest.raises(SampleConflict, match='h"') as raised:
            await write(storage, make_series({"__name__": "h"}, histograms=[two]))
        assert (raised.value.timestamp, raised.value.stored, raised.value.sent) == (5, 1.0, 3.0)
        assert (storage.histogram_count(), storage.sample_count()) == (1, 0)

    run(body)


def test_exemplars_are_bounded_per_tenant() -> None:
    storage = MemoryStorage(max_exemplars=3)

    def exemplar(i: int) -> Exemplar:
        return Exemplar(Labels.from_mapping({"trace_id": str(i)}), float(i), i)

    async def body() -> None:
        for i in range(5):
            await write(storage, make_series({"__name__": "e"}, [(i, 1.0)], exemplars=[exemplar(i)]))
        await write(storage, make_series({"__name__": "e"}, exemplars=[exemplar(9)]), tenant="t1")
        kept = storage.exemplars()
        assert [e.timestamp for _, e in kept] == [2, 3, 4]
        assert {str(labels) for labels, _ in kept} == {'{__name__="e"}'}
        assert [e.timestamp for _, e in storage.exemplars("t1")] == [9]
        assert storage.series_count("t1") == 0  # exemplars alone create no series
        assert storage.exemplars("nobody") == []

    run(body)


def test_metadata_keeps_the_latest_per_family_and_tenant() -> None:
    storage = MemoryStorage()
    first = MetricMetadata("up", MetricType.GAUGE, "old help")
    second = MetricMetadata("up", MetricType.GAUGE, "new help")
    other = MetricMetadata("http_requests", MetricType.COUNTER, "requests", "")

    async def body() -> None:
        await storage.write(Context(), WriteRequest(metadata=[first, other]))
        await storage.write(Context(), WriteRequest(metadata=[second]))
        await storage.write(Context(tenant="t1"), WriteRequest(metadata=[first]))
        with pytest.raises(SampleConflict):
            await storage.write(
                Context(),
                WriteRequest(
                    [make_series({"__name__": "x"}, [(1, 1.0), (1, 2.0)])],
                    [MetricMetadata("up", MetricType.COUNTER)],
                ),
            )
        assert await storage.metadata(Context()) == {"up": second, "http_requests": other}
        assert await storage.metadata(Context(tenant="t1")) == {"up": first}
        assert await storage.metadata(Context(tenant="nobody")) == {}

    run(body)


def test_counts_and_tenants() -> None:
    storage = MemoryStorage()

    async def body() -> None:
        assert (storage.series_count(), storage.sample_count(), storage.tenants()) == (0, 0, [])
        await write(storage, *population(10))
        await write(storage, make_series({"__name__": "x"}, [(1, 1.0), (2, 2.0)]), tenant="b")
        await write(storage, make_series({"__name__": "x"}, [(1, 1.0), (2, 2.0)]), tenant="b")  # retry
        assert storage.series_count() == 11
        assert storage.series_count("b") == 1
        assert storage.sample_count() == 12
        assert storage.sample_count("b") == 2
        assert storage.series_count("nobody") == 0
        assert storage.tenants() == ["b", "default"]

    run(body)


# -- sealed chunks ---------------------------------------------------------------

STEP = 15_000  # a 15 s scrape interval


class CountingDecodes:
    """Counts the chunks :mod:`remote_storage.backends.memory_series` decodes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        monkeypatch.setattr(memory_series, "decode_chunk", self)

    def __call__(self, data: bytes) -> Any:
        self.calls += 1
        return decode_chunk(data)


def long_series(count: int = 1000, seed: int = 1) -> list[tuple[int, float]]:
    """A counter scraped every 15 s, with every special float value somewhere in it."""
    rng = random.Random(seed)
    samples = []
    value = 1000.0
    for i in range(count):
        samples.append((i * STEP, value))
        value += rng.randrange(6)
    for i, pattern in enumerate(SPECIAL_VALUES):  # one in each of the first chunks and in the head
        position = (i * 97 + 50) % count
        samples[position] = (position * STEP, float_from_bits(pattern))
    return samples


async def read_chunks(
    storage: MemoryStorage, name: str, start: int = MIN_TIME, end: int = MAX_TIME
) -> list[TimeSeries]:
    query = Query(start, end, (eq("__name__", name),), accept_chunks=True)
    return [series async for series in storage.process_query(Context(), query)]


def chunk_contents(chunks: Sequence[EncodedChunk]) -> list[list[tuple[int, int]]]:
    """Each chunk's samples as (timestamp, value bits), checking its min/max times on the way."""
    contents = []
    for chunk in chunks:
        timestamps, values = decode_chunk(chunk.data)
        assert (chunk.min_time, chunk.max_time) == (timestamps[0], timestamps[-1])
        contents.append([(t, bits(v)) for t, v in zip(timestamps, values, strict=True)])
    return contents


def exact(samples: Sequence[tuple[int, float]]) -> list[tuple[int, int]]:
    return [(t, bits(v)) for t, v in samples]


def test_long_series_is_sealed_in_chunks_and_reads_back_bit_exactly() -> None:
    storage = MemoryStorage()
    samples = long_series(1000)

    async def body() -> None:
        for i in range(0, 1000, 50):  # as scraped: appended a few samples at a time
            await write(storage, make_series({"__name__": "long"}, samples[i : i + 50]))
        (found,) = await run_query(storage, eq("__name__", "long"))
        assert found.chunks == ()
        assert snapshot([found]) == snapshot([make_series({"__name__": "long"}, samples)])
        (streamed,) = await read_chunks(storage, "long")
        contents = chunk_contents(streamed.chunks)
        assert [len(c) for c in contents] == [SAMPLES_PER_CHUNK] * 8
        assert contents == [exact(samples[i : i + 120]) for i in range(0, 960, 120)]
        assert exact(list(streamed.samples())) == exact(samples[960:])  # the head
        assert [c.data for c in streamed.chunks] == [
            encode_for_storage(*zip(*samples[i : i + 120], strict=True)) for i in range(0, 960, 120)
        ]
        assert storage.sample_count() == 1000
        assert storage.chunk_bytes() == sum(len(c.data) for c in streamed.chunks)
        assert storage.memory_bytes() > storage.chunk_bytes()
        assert storage.sealed_sample_count() == 960
        stats = await storage.stats()
        assert (stats.sealed_chunk_bytes, stats.sealed_samples) == (storage.chunk_bytes(), 960)

    run(body)


def test_range_queries_decode_only_the_chunks_they_meet(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = MemoryStorage()
    samples = long_series(1000)
    decodes = CountingDecodes(monkeypatch)

    async def decoded(start: int, end: int) -> tuple[list[tuple[int, int]], int]:
        """The samples a query returns (none when no series) and the chunks it decoded."""
        decodes.calls = 0
        found = await run_query(storage, eq("__name__", "r"), start=start, end=end)
        return [s for series in found for s in exact(list(series.samples()))], decodes.calls

    async def body() -> None:
        await write(storage, make_series({"__name__": "r"}, samples))
        cases = [
            (0, 0, 1),
            (130 * STEP, 130 * STEP + 1, 1),
            (119 * STEP, 120 * STEP, 2),
            (-1, 250 * STEP, 3),
            (959 * STEP + 1, 970 * STEP, 0),  # the head only
            (MIN_TIME, MAX_TIME, 8),
            (119 * STEP + 1, 120 * STEP - 1, 0),  # between two chunks: nothing
            (130 * STEP + 1, 131 * STEP - 1, 1),  # inside one chunk, between two samples: nothing
            (1000 * STEP, MAX_TIME, 0),
        ]
        for start, end, chunks in cases:
            expected = exact([s for s in samples if start <= s[0] <= end])
            assert await decoded(start, end) == (expected, chunks), (start, end)
        assert await read_chunks(storage, "r", 130 * STEP + 1, 131 * STEP - 1) == []
        assert await read_chunks(storage, "r", 959 * STEP + 1, 960 * STEP - 1) == []

    run(body)


def test_accept_chunks_hands_over_the_stored_chunks() -> None:
    storage = MemoryStorage()
    samples = long_series(1000)

    async def body() -> None:
        await write(storage, make_series({"__name__": "c"}, samples))
        (everything,) = await read_chunks(storage, "c")
        start, end = 300 * STEP + 1, 990 * STEP
        (part,) = await read_chunks(storage, "c", start, end)
        # chunks 2..7 meet the range; they are the stored objects, not encoded again
        assert [c.min_time for c in part.chunks] == [i * STEP for i in range(240, 960, 120)]
        assert all(a.data is b.data for a, b in zip(part.chunks, everything.chunks[2:], strict=True))
        assert list(part.timestamps) == [t for t, _ in samples[960:991]]  # the head, trimmed
        union = [s for c in chunk_contents(part.chunks) for s in c] + exact(list(part.samples()))
        assert [s for s in union if start <= s[0] <= end] == exact(samples[301:991])
        # a range inside one chunk that holds a sample there: that chunk alone
        (one,) = await read_chunks(storage, "c", 130 * STEP, 130 * STEP + 1)
        assert [c.data for c in one.chunks] == [everything.chunks[1].data]
        assert list(one.timestamps) == []
        # only the head
        (head,) = await read_chunks(storage, "c", 980 * STEP)
        assert (head.chunks, len(head.timestamps)) == ([], 20)

    run(body)


def test_late_samples_go_into_sealed_chunks() -> None:
    storage = MemoryStorage()
    samples = dict(long_series(1000))

    async def body() -> None:
        await write(storage, make_series({"__name__": "late"}, sorted(samples.items())))
        late = {
            -STEP: -1.0,  # before the first chunk
            119 * STEP + 5: 2.0,  # between chunk 0 and chunk 1
            250 * STEP + 1: 3.0,  # inside chunk 2: it now holds 121 samples and is split
            500 * STEP + 7: float_from_bits(STALE_NAN_BITS),
            959 * STEP + 3: 4.0,  # between the last chunk and the head
            970 * STEP + 3: 5.0,  # inside the head
        }
        await write(storage, make_series({"__name__": "late"}, list(late.items())))
        samples.update(late)
        expected = sorted(samples.items())
        (found,) = await run_query(storage, eq("__name__", "late"))
        assert exact(list(found.samples())) == exact(expected)
        (streamed,) = await read_chunks(storage, "late")
        contents = chunk_contents(streamed.chunks)
        # chunks 0, 2 and 4 grew past 120 samples and were split in two; the head took the rest
        assert [len(c) for c in contents] == [61, 61, 120, 60, 61, 120, 60, 61, 120, 120, 120]
        assert len(streamed.timestamps) == 42
        flat = [s for c in contents for s in c] + exact(list(streamed.samples()))
        assert flat == exact(expected)  # in order and without overlap
        assert storage.sample_count() == 1000 + len(late)

    run(body)


def test_duplicates_and_conflicts_against_sealed_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = MemoryStorage()
    samples = long_series(1000)
    labels = {"__name__": "dup", "job": "j"}
    decodes = CountingDecodes(monkeypatch)

    async def body() -> None:
        await write(storage, make_series(labels, samples))
        (before,) = await read_chunks(storage, "dup")
        assert decodes.calls == 0
        # a retry of everything is a no-op; each chunk is decoded once to check it
        await write(storage, make_series(labels, samples))
        assert (decodes.calls, storage.sample_count()) == (8, 1000)
        # timestamps in the head, after the last chunk or after the newest sample decode nothing
        decodes.calls = 0
        retry = [samples[960], samples[999], (959 * STEP + 1, 1.0), (1000 * STEP, 1.0)]
        await write(storage, make_series(labels, retry))
        assert (decodes.calls, storage.sample_count()) == (0, 1002)
        # the stale marker in a sealed chunk keeps its bits: the same bits are a duplicate
        stale_at = next(t for t, v in samples if bits(v) == STALE_NAN_BITS)
        await write(storage, make_series(labels, [(stale_at, float_from_bits(STALE_NAN_BITS))]))
        assert decodes.calls == 1
        for stored_at, sent in [(stale_at, 0x7FF8000000000001), (samples[130][0], bits(samples[130][1]) ^ 1)]:
            bad = make_series(labels, [(500 * STEP + 1, 1.0), (stored_at, float_from_bits(sent))])
            other = make_series({"__name__": "other"}, [(1, 1.0)])
            with pytest.raises(SampleConflict, match="job") as raised:
                await write(storage, other, bad)
            assert raised.value.timestamp == stored_at
        assert storage.sample_count() == 1002
        assert await run_query(storage, eq("__name__", "other")) == []
        (after,) = await read_chunks(storage, "dup")
        assert all(a.data is b.data for a, b in zip(after.chunks, before.chunks, strict=True))

    run(body)


@pytest.mark.parametrize("seed", range(4))
def test_random_writes_match_a_plain_model(seed: int) -> None:
    """Late, duplicate and conflicting samples in random order, against a dict of what must be stored."""
    rng = random.Random(seed)
    storage = MemoryStorage()
    model: dict[int, float] = {}

    async def check(start: int, end: int) -> None:
        expected = exact(sorted((t, v) for t, v in model.items() if start <= t <= end))
        found = await run_query(storage, eq("__name__", "rnd"), start=start, end=end)
        assert [s for series in found for s in exact(list(series.samples()))] == expected
        streamed = await read_chunks(storage, "rnd", start, end)
        parts = [
            p for series in streamed for p in [*chunk_contents(series.chunks), exact(list(series.samples()))]
        ]
        assert all(len(part) <= SAMPLES_PER_CHUNK for part in parts)
        flat = [s for part in parts for s in part]
        times = [t for t, _ in flat]
        assert times == sorted(set(times))  # chunks and head in time order, without overlap
        assert [s for s in flat if start <= s[0] <= end] == expected

    async def body() -> None:
        for _ in range(60):
            batch: dict[int, float] = {}
            for _ in range(rng.randrange(1, 80)):
                t = rng.randrange(3000) * 10
                batch[t] = model.get(t, float(rng.randrange(100)))  # stored ones are sent again as they are
            conflict = model and rng.random() < 0.2
            if conflict:
                t = rng.choice(list(model))
                batch[t] = float_from_bits(bits(model[t]) ^ 1)
            series = make_series({"__name__": "rnd"}, rng.sample(list(batch.items()), len(batch)))
            if conflict:
                with pytest.raises(SampleConflict):
                    await write(storage, series)
            else:
                await write(storage, series)
                model.update(batch)
            assert storage.sample_count() == len(model)
        await check(MIN_TIME, MAX_TIME)
        for _ in range(20):
            start = rng.randrange(-10, 30010)
            await check(start, start + rng.randrange(3000))

    run(body)


def test_sealed_counter_takes_under_two_bytes_per_sample() -> None:
    storage = MemoryStorage()
    rng = random.Random(5)
    samples = []
    value = 0.0
    for i in range(10 * SAMPLES_PER_CHUNK):  # ten full chunks, an empty head
        samples.append((1_700_000_000_000 + i * STEP, value))
        value += rng.randrange(6)

    async def body() -> None:
        for i in range(0, len(samples), 10):
            await write(storage, make_series({"__name__": "requests_total"}, samples[i : i + 10]))
        (streamed,) = await read_chunks(storage, "requests_total")
        assert (len(streamed.chunks), len(streamed.timestamps)) == (10, 0)
        assert sum(chunk_samples(c.data) for c in streamed.chunks) == len(samples)
        assert storage.chunk_bytes() / len(samples) < 2.0
        # what Python adds per chunk (a bytes object, its min and max times) stays small
        assert storage.memory_bytes() / len(samples) < 2.0 + 1.0

    run(body)


# -- construction ----------------------------------------------------------------


def test_from_url_defaults_and_options() -> None:
    assert isinstance(open_storage("memory://"), MemoryStorage)
    storage = MemoryStorage.from_url("memory://?key_cache_size=10&max_exemplars=0")
    assert (storage.key_cache_size, storage.max_exemplars) == (10, 0)
    assert MemoryStorage.from_url("MEMORY:").key_cache_size == MemoryStorage().key_cache_size
    assert "key_cache_size=10" in repr(storage)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://?cache=1", "unknown option 'cache' (known options: key_cache_size, max_exemplars)"),
        ("memory://?max_exemplars=ten", "option 'max_exemplars' must be an integer >= 0, got 'ten'"),
        ("memory://?max_exemplars=", "must be an integer >= 0, got ''"),
        ("memory://?key_cache_size=-1", "key_cache_size must be an integer >= 0, got -1"),
        ("memory://?max_exemplars=1&max_exemplars=2", "'max_exemplars' is given more than once"),
        ("memory://?max_exemplars", "malformed query string"),
        ("memory://host", "no host, path or fragment"),
        ("memory:///data", "no host, path or fragment"),
        ("sqlite:///x.db", "scheme 'sqlite' is not 'memory'"),
    ],
)
def test_from_url_rejects(url: str, message: str) -> None:
    with pytest.raises(InvalidStorageURL, match=re.escape(message)) as raised:
        MemoryStorage.from_url(url)
    assert raised.value.url == url
    assert isinstance(raised.value, ValueError)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="max_exemplars must be an integer >= 0"):
        MemoryStorage(max_exemplars=-5)
    with pytest.raises(ValueError, match="key_cache_size"):
        MemoryStorage(key_cache_size=True)


def test_unknown_capability_is_rejected() -> None:
    with pytest.raises(TypeError, match="unknown capabilities \\['histogram'\\]"):

        class Typo(BackendConformance):
            unsupported = frozenset({"histogram"})


def test_declared_unsupported_capability_skips() -> None:
    class NoHistograms(BackendConformance):
        unsupported = frozenset({"histograms"})

        def make_storage(self) -> MemoryStorage:
            return MemoryStorage()

    with pytest.raises(pytest.skip.Exception, match="NoHistograms declares 'histograms' unsupported"):
        NoHistograms().test_histograms_round_trip()
