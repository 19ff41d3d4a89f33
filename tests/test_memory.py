"""The in-memory backend: the conformance suite, plus its index, key cache and URL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from remote_storage.backends import InvalidStorageURL, open_storage
from remote_storage.backends.memory import MemoryStorage
from remote_storage.errors import SampleConflict
from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    MetricType,
    TimeSeries,
    WriteRequest,
)
from remote_storage.testing import BackendConformance, bits, float_from_bits, make_series, run_query


class TestMemoryConformance(BackendConformance):
    def make_storage(self) -> MemoryStorage:
        return MemoryStorage()


class TestMemoryConformanceWithoutKeyCache(BackendConformance):
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


def test_key_cache_is_bounded_lru() -> None:
    storage = MemoryStorage(key_cache_size=2)
    decoders = [CountingDecode({"__name__": "s", "n": str(i)}) for i in range(3)]

    async def body() -> None:
        for t, decode in enumerate(decoders):
            await write(storage, decode.series(f"k{t}", 1))
        await write(storage, decoders[1].series("k1", 2))  # k1 becomes the most recent
        assert [d.calls for d in decoders] == [1, 1, 1]
        await write(storage, decoders[0].series("k0", 2))  # evicted: decoded again, evicts k2
        await write(storage, decoders[1].series("k1", 3))
        await write(storage, decoders[2].series("k2", 2))
        assert [d.calls for d in decoders] == [2, 1, 2]
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
