"""A conformance suite for storage backends: subclass it in your tests and run pytest.

Every backend keeps the semantics documented in :mod:`remote_storage.storage`
(bit-exact values, inclusive ranges, Prometheus matcher rules, sorted
results, idempotent retries, atomic writes, tenant isolation). This module
checks them against any :class:`~remote_storage.storage.RemoteStorage`::

    # tests/test_my_backend.py
    from remote_storage.testing import BackendConformance
    from my_package.storage import MyStorage

    class TestMyStorage(BackendConformance):
        unsupported = frozenset({"histograms"})  # those tests skip, with the reason

        def make_storage(self):
            return MyStorage(self.tmp_path / "data.db")

``make_storage`` returns a new, empty, not yet started backend; each test
starts it, runs against it and closes it. ``self.tmp_path`` is pytest's
temporary directory of the running test. The capabilities a backend may
declare unsupported are listed in :data:`CAPABILITIES`.

The suite needs only pytest: the tests are plain functions that run their
coroutines with :func:`asyncio.run`.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from remote_storage.errors import SampleConflict
from remote_storage.matchers import Matcher
from remote_storage.storage import (
    Context,
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    MetricType,
    Query,
    ReadRequest,
    RemoteStorage,
    ResetHint,
    SampleBatch,
    TimeSeries,
    WriteRequest,
    float_bits,
)

__all__ = [
    "CAPABILITIES",
    "MAX_TIME",
    "MIN_TIME",
    "SPECIAL_VALUES",
    "STALE_NAN_BITS",
    "BackendConformance",
    "bits",
    "float_from_bits",
    "make_series",
    "run_query",
    "snapshot",
    "write",
]

#: What a backend may declare in ``unsupported``:
#: ``histograms`` (native histograms), ``tenants`` (more than one tenant),
#: ``out_of_order`` (samples older than the newest of their series).
CAPABILITIES = frozenset({"histograms", "tenants", "out_of_order"})

MIN_TIME = -(2**63)
MAX_TIME = 2**63 - 1

_DOUBLE = struct.Struct("<d")
_UINT64 = struct.Struct("<Q")

bits = float_bits  # the 64 bits of a float, the only way to compare NaN payloads


def float_from_bits(pattern: int) -> float:
    """A new float object with exactly these bits (``0x7FF0000000000002`` is the stale marker)."""
    return float(_DOUBLE.unpack(_UINT64.pack(pattern))[0])


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
    labels: Mapping[str, str],
    samples: Iterable[tuple[int, float]] = (),
    histograms: Sequence[Histogram] = (),
    exemplars: Sequence[Exemplar] = (),
) -> TimeSeries:
    """A :class:`TimeSeries` from a label mapping and ``(timestamp, value)`` pairs."""
    pairs = list(samples)
    return TimeSeries(
        Labels.from_mapping(labels), [t for t, _ in pairs], [v for _, v in pairs], histograms, exemplars
    )


def snapshot(series: Iterable[TimeSeries]) -> list[tuple[str, list[int], list[int], list[object]]]:
    """Series as plain, bit-exact data: assertion diffs stay readable and NaNs compare."""
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


def _m(selector: str) -> Matcher:
    """``'a=~"x|y"'`` -> Matcher: a tiny parser for the suite's own selectors."""
    for op in ("=~", "!~", "!=", "="):
        name, found, value = selector.partition(op)
        if found:
            return Matcher.parse(name, op, value.strip('"'))
    raise ValueError(selector)


def _hist(timestamp: int, count: int = 5, sum_: float = 12.5, *, is_float: bool = False) -> Histogram:
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


def _ids(found: Sequence[TimeSeries]) -> str:
    """The ``id`` labels of the matcher tests' series, once their order is checked."""
    labels = [s.labels for s in found]
    assert labels == sorted(labels), "series are not sorted by labels"
    return "".join(sorted(s.labels.get("id") for s in found))


_Body = Callable[[RemoteStorage], Awaitable[None]]

# The series of the matcher tests by their "id" label; each case lists the ids it selects.
_MATCHER_SERIES = {
    "1": {"__name__": "m", "a": "x", "b": "1"},
    "2": {"__name__": "m", "a": "y"},
    "3": {"__name__": "m", "b": "1"},
    "4": {"__name__": "m", "a": "xx"},
    "5": {"__name__": "m", "a": "x\ny"},
}
_MATCHER_CASES = [
    ('a="x"', "1"),
    ('a=""', "3"),
    ('a!="x"', "2345"),
    ('a!=""', "1245"),
    ('a=~"x|"', "13"),
    ('a=~".+"', "1245"),
    ('a=~".*"', "12345"),
    ('a!~""', "1245"),
    ('a!~".*"', ""),
    ('a=~"x"', "1"),  # anchored: not "xx"
    ('a=~"x.*"', "145"),  # "." matches a newline too
    ('a=~"y|xx"', "24"),
    ('a!~"x"', "2345"),
    ('a=~"X"', ""),
    ('a=~"(?i)X"', "1"),
    ('a=~"[[:alpha:]]"', "12"),
    ('a=~"\\pL+"', "124"),
]


class BackendConformance:
    """Base class of a backend's conformance tests; implement :meth:`make_storage`.

    ``unsupported`` names the :data:`CAPABILITIES` the backend lacks; their
    tests skip. The suite writes to the tenants ``"default"``, ``"t1"`` and
    ``"t2"`` only.
    """

    unsupported: ClassVar[frozenset[str]] = frozenset()
    tmp_path: Path

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.unsupported) - CAPABILITIES
        if unknown:
            raise TypeError(
                f"{cls.__name__}.unsupported names unknown capabilities {sorted(unknown)}; "
                f"known: {sorted(CAPABILITIES)}"
            )

    def make_storage(self) -> RemoteStorage:
        """A new, empty backend, not started yet."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_storage()")

    @pytest.fixture(autouse=True)
    def _conformance_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def run(self, body: _Body, *needs: str) -> None:
        """Start a fresh backend, await ``body(storage)``, close the backend.

        ``needs`` names the capabilities the test relies on; it skips when the
        backend declares one of them unsupported.
        """
        for capability in needs:
            assert capability in CAPABILITIES, capability
            if capability in self.unsupported:
                pytest.skip(f"{type(self).__name__} declares {capability!r} unsupported")

        async def main() -> None:
            storage = self.make_storage()
            await storage.start()
            try:
                await body(storage)
            finally:
                await storage.close()

        asyncio.run(main())

    # -- writing and reading back --------------------------------------------------

    def test_round_trip(self) -> None:
        up = make_series({"__name__": "up", "job": "node"}, [(1000, 1.0), (2000, 0.0), (3000, 1.0)])
        load = make_series({"__name__": "load", "job": "node"}, [(-5000, 0.25), (0, 1e300)])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, up, load)
            assert snapshot(await run_query(storage, _m('job="node"'))) == snapshot([load, up])
            assert snapshot(await run_query(storage, _m('__name__="up"'))) == snapshot([up])
            for t in range(4, 7):  # later writes append
                await write(storage, make_series({"__name__": "up", "job": "node"}, [(t * 1000, float(t))]))
            (found,) = await run_query(storage, _m('__name__="up"'), start=3000)
            assert list(found.samples()) == [(3000, 1.0), (4000, 4.0), (5000, 5.0), (6000, 6.0)]

        self.run(body)

    def test_a_working_backend_says_it_takes_writes(self) -> None:
        """``unavailable()`` is None while the backend works (``GET /-/ready`` answers 200)."""

        async def body(storage: RemoteStorage) -> None:
            assert storage.unavailable() is None
            await write(storage, make_series({"__name__": "up"}, [(1000, 1.0)]))
            assert storage.unavailable() is None

        self.run(body)

    def test_special_values_are_bit_exact(self) -> None:
        samples = [(i, float_from_bits(pattern)) for i, pattern in enumerate(SPECIAL_VALUES)]

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series({"__name__": "s"}, samples))
            (found,) = await run_query(storage, _m('__name__="s"'))
            assert [bits(v) for v in found.values] == list(SPECIAL_VALUES)

        self.run(body)

    def test_range_is_inclusive(self) -> None:
        series = make_series({"__name__": "r"}, [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)

            async def times(start: int, end: int) -> list[list[int]]:
                return [
                    list(s.timestamps)
                    for s in await run_query(storage, _m('__name__="r"'), start=start, end=end)
                ]

            assert await times(20, 30) == [[20, 30]]
            assert await times(10, 40) == [[10, 20, 30, 40]]
            assert await times(40, 40) == [[40]]
            assert await times(11, 19) == []  # no sample in range: series omitted
            assert await times(41, 100) == []
            assert await times(30, 20) == []
            assert await times(MIN_TIME, MAX_TIME) == [[10, 20, 30, 40]]

        self.run(body)

    def test_series_sorted_by_labels(self) -> None:
        names = [
            {"__name__": "z"},
            {"__name__": "a", "x": "2"},
            {"__name__": "a", "x": "10"},
            {"__name__": "a"},
        ]

        async def body(storage: RemoteStorage) -> None:
            for labels in names:
                await write(storage, make_series(labels, [(1, 1.0)]))
            found = await run_query(storage, _m('__name__=~".+"'))
            assert [s.labels for s in found] == sorted(Labels.from_mapping(n) for n in names)

        self.run(body)

    def test_empty_write_request(self) -> None:
        async def body(storage: RemoteStorage) -> None:
            await storage.write(Context(), WriteRequest())
            await write(storage, TimeSeries(Labels.from_mapping({"__name__": "e"})))
            metadata = MetricMetadata("e", MetricType.GAUGE, "help", "seconds")
            await storage.write(Context(), WriteRequest(metadata=[metadata]))
            assert await run_query(storage, _m('__name__=~".+"')) == []

        self.run(body)

    def test_lazy_labels(self) -> None:
        labels = Labels.from_mapping({"__name__": "lazy", "job": "j"})

        async def body(storage: RemoteStorage) -> None:
            for t in (1, 2):
                lazy = TimeSeries.lazy(("k",), lambda: labels, [t], [float(t)])
                await write(storage, lazy)
            (found,) = await run_query(storage, _m('job="j"'))
            assert (found.labels, list(found.timestamps)) == (labels, [1, 2])

        self.run(body)

    def test_equal_labels_with_different_keys_are_one_series(self) -> None:
        labels = Labels.from_mapping({"__name__": "k"})
        first = TimeSeries(labels, [3, 1], [3.0, 1.0], key="v1")
        second = TimeSeries(labels, [2], [2.0], key=b"v2")

        async def body(storage: RemoteStorage) -> None:
            await write(storage, first, second)
            await write(storage, TimeSeries(labels, [4], [4.0], key=("v3",)))
            (found,) = await run_query(storage, _m('__name__="k"'))
            assert list(found.timestamps) == [1, 2, 3, 4]
            assert list(found.values) == [1.0, 2.0, 3.0, 4.0]

        self.run(body, "out_of_order")

    def test_exemplars_are_accepted(self) -> None:
        exemplar = Exemplar(Labels.from_mapping({"trace_id": "abc"}), 0.5, 1000)
        series = make_series({"__name__": "ex"}, [(1000, 1.0)], exemplars=[exemplar])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)
            await write(storage, series)
            assert [list(s.timestamps) for s in await run_query(storage, _m('__name__="ex"'))] == [[1000]]

        self.run(body)

    # -- matchers ------------------------------------------------------------------

    async def _matcher_fixture(self, storage: RemoteStorage) -> None:
        await write(
            storage, *(make_series({**ls, "id": key}, [(1, 1.0)]) for key, ls in _MATCHER_SERIES.items())
        )

    @pytest.mark.parametrize(
        ("selectors", "expected"),
        [((selector,), expected) for selector, expected in _MATCHER_CASES]
        + [
            (('a!="x"', 'b="1"'), "3"),
            (('b=""', 'a=~"x.*"'), "45"),
            (('a=~".+"', 'b=~".+"'), "1"),
            (('a="x"', 'a="y"'), ""),
            (('a=""', 'b=""'), ""),
            (('id=~"1|2|3"', 'a!~"y"'), "13"),
            (('nolabel=""',), "12345"),
            (('nolabel="x"',), ""),
            (('nolabel=~".+"',), ""),
        ],
    )
    def test_matchers(self, selectors: tuple[str, ...], expected: str) -> None:
        async def body(storage: RemoteStorage) -> None:
            await self._matcher_fixture(storage)
            assert _ids(await run_query(storage, *map(_m, selectors))) == expected
            with_name = await run_query(storage, _m('__name__="m"'), *map(_m, selectors))
            assert _ids(with_name) == expected

        self.run(body)

    def test_read_answers_queries_in_order(self) -> None:
        async def body(storage: RemoteStorage) -> None:
            await self._matcher_fixture(storage)
            queries = (
                Query(MIN_TIME, MAX_TIME, (_m('a="y"'),)),
                Query(MIN_TIME, MAX_TIME, (_m('b="1"'),)),
                Query(MIN_TIME, MAX_TIME, (_m('a!~".*"'),)),
                Query(2, 3, (_m('a="x"'),)),
                Query(MIN_TIME, MAX_TIME, (_m('a="x"'),)),
            )
            results = await storage.read(Context(), ReadRequest(queries))
            assert [_ids(result.series) for result in results] == ["2", "13", "", "", "1"]

        self.run(body)

    # -- order, duplicates and conflicts -------------------------------------------

    def test_out_of_order_samples_come_back_sorted(self) -> None:
        labels = {"__name__": "o"}

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, [(30, 3.0), (10, 1.0), (50, 5.0)]))
            await write(storage, make_series(labels, [(40, 4.0), (20, 2.0), (0, 0.0)]))
            (found,) = await run_query(storage, _m('__name__="o"'))
            assert list(found.timestamps) == [0, 10, 20, 30, 40, 50]
            assert list(found.values) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]

        self.run(body, "out_of_order")

    def test_shuffled_samples_come_back_sorted(self) -> None:
        samples = [(t, float(t)) for t in range(0, 5000, 5)]
        shuffled = samples[:]
        random.Random(7).shuffle(shuffled)

        async def body(storage: RemoteStorage) -> None:
            for i in range(0, len(shuffled), 100):
                chunk = shuffled[i : i + 100]
                await write(storage, make_series({"__name__": "sh"}, chunk))
            (found,) = await run_query(storage, _m('__name__="sh"'))
            assert list(found.samples()) == samples

        self.run(body, "out_of_order")

    def test_duplicate_sample_is_idempotent(self) -> None:
        stale = STALE_NAN_BITS

        def series() -> TimeSeries:  # new float objects each time
            return make_series({"__name__": "d"}, [(1, 1.0), (2, float_from_bits(stale)), (3, -0.0)])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series())
            await write(storage, series())
            twice = make_series({"__name__": "d"}, [(3, -0.0), (3, -0.0), (4, 4.0), (4, 4.0)])
            await write(storage, twice)
            (found,) = await run_query(storage, _m('__name__="d"'))
            assert list(found.timestamps) == [1, 2, 3, 4]
            assert [bits(v) for v in found.values] == [bits(1.0), stale, bits(-0.0), bits(4.0)]

        self.run(body)

    @pytest.mark.parametrize(
        ("stored", "sent"),
        [
            (1.0, 2.0),
            (0.0, -0.0),
            (STALE_NAN_BITS, 0x7FF8000000000001),
            (0x7FF8000000000000, 0x7FF8000000000001),
        ],
    )
    def test_conflict_stores_nothing_of_the_request(self, stored: float | int, sent: float | int) -> None:
        def value(v: float | int) -> float:
            return float_from_bits(v) if isinstance(v, int) else v

        labels = {"__name__": "c", "job": "j"}

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, [(10, value(stored))]))
            other = make_series({"__name__": "other"}, [(10, 1.0)])
            bad = make_series(labels, [(20, 2.0), (10, value(sent))])
            exemplar = Exemplar(Labels.from_mapping({"trace_id": "t"}), 1.0, 10)
            also = make_series({"__name__": "also"}, [(5, 5.0)], exemplars=[exemplar])
            with pytest.raises(SampleConflict) as raised:
                await write(storage, other, bad, also)
            assert raised.value.timestamp == 10
            assert "job" in str(raised.value)
            found = await run_query(storage, _m('__name__=~".+"'))
            assert snapshot(found) == snapshot([make_series(labels, [(10, value(stored))])])

        self.run(body)

    def test_conflict_within_one_request(self) -> None:
        async def body(storage: RemoteStorage) -> None:
            bad = make_series({"__name__": "w"}, [(1, 1.0), (2, 2.0), (1, 1.5)])
            good = make_series({"__name__": "fine"}, [(1, 1.0)])
            with pytest.raises(SampleConflict):
                await write(storage, good, bad)
            assert await run_query(storage, _m('__name__=~".+"')) == []

        self.run(body)

    def test_conflict_across_entries_of_one_series(self) -> None:
        labels = Labels.from_mapping({"__name__": "e"})

        async def body(storage: RemoteStorage) -> None:
            first = TimeSeries(labels, [1], [1.0], key="a")
            second = TimeSeries(labels, [1], [2.0], key="b")
            with pytest.raises(SampleConflict):
                await write(storage, first, second)
            assert await run_query(storage, _m('__name__="e"')) == []

        self.run(body)

    def test_batch_requests_store_what_series_requests_store(self) -> None:
        """Requests in column form (:class:`SampleBatch`) keep every rule the series form keeps.

        A seeded run of requests in batch form: each series' next samples in
        shuffled order, and now and then a retried sample, the same series
        twice in one request, a late sample, a new series or a conflicting
        sample (the whole request must then store nothing). What is stored is
        compared with a model of the rules after every request, and reads are
        compared once at the end.
        """
        rng = random.Random(7)
        in_order_only = "out_of_order" in self.unsupported
        labels = {b"key-%d" % n: Labels.from_mapping({"__name__": "batch", "n": str(n)}) for n in range(8)}
        model: dict[bytes, dict[int, int]] = {}  # key -> timestamp -> value bits
        next_time = dict.fromkeys(labels, 1_000)
        active = list(labels)[:3]

        def request() -> tuple[list[tuple[bytes, int, int]], bool]:
            """Rows of one request, and whether it must be refused as a conflict."""
            rows = []
            for key in rng.sample(active, len(active)):
                for _ in range(2 if rng.random() < 0.1 else 1):  # the same series twice
                    rows.append((key, next_time[key], rng.choice([*SPECIAL_VALUES, rng.getrandbits(64)])))
                    next_time[key] += rng.choice([1, 15_000])
            stored = [(key, t, v) for key in active for t, v in model.get(key, {}).items()]
            if stored and rng.random() < 0.15:  # a retry: same bits, stored once
                rows.insert(rng.randrange(len(rows) + 1), rng.choice(stored))
            if not in_order_only and rng.random() < 0.1:  # late, not stored yet
                key = rng.choice(active)
                late = min(model.get(key, {1000: 0})) - rng.randint(1, 50)
                rows.insert(rng.randrange(len(rows) + 1), (key, late, rng.getrandbits(64)))
            conflict = bool(stored) and rng.random() < 0.05
            if conflict:
                key, t, v = rng.choice(stored)
                rows.insert(rng.randrange(len(rows) + 1), (key, t, v ^ 1))
            return rows, conflict

        async def body(storage: RemoteStorage) -> None:
            for number in range(160):
                if number % 40 == 39 and len(active) < len(labels):
                    active.append(list(labels)[len(active)])  # a new series joins
                rows, conflict = request()
                batch = SampleBatch(
                    [key for key, _, _ in rows],
                    struct.pack(f"={len(rows)}q", *(t for _, t, _ in rows)),
                    struct.pack(f"={len(rows)}Q", *(v for _, _, v in rows)),
                    lambda key: labels[key],  # type: ignore[index]
                )
                try:
                    await storage.write(Context(), WriteRequest(batch=batch))
                except SampleConflict:
                    assert conflict, f"request {number} was refused as a conflict"
                    continue
                assert not conflict, f"request {number} held a conflicting sample but was stored"
                for key, t, v in rows:
                    model.setdefault(key, {})[t] = v
            expected: list[tuple[str, list[int], list[int], list[object]]] = [
                (str(labels[key]), sorted(model[key]), [model[key][t] for t in sorted(model[key])], [])
                for key in sorted(model, key=labels.__getitem__)
            ]
            assert snapshot(await run_query(storage, _m('__name__="batch"'))) == expected

        self.run(body)

    # -- tenants -------------------------------------------------------------------

    def test_tenant_isolation(self) -> None:
        labels = {"__name__": "t", "job": "j"}
        one, two = Context(tenant="t1"), Context(tenant="t2")

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, [(1, 1.0)]), ctx=one)
            # the same series and timestamp with another value is no conflict elsewhere
            await write(storage, make_series(labels, [(1, 2.0), (2, 2.0)]), ctx=two)
            assert [list(s.values) for s in await run_query(storage, _m('job="j"'), ctx=one)] == [[1.0]]
            assert [list(s.values) for s in await run_query(storage, _m('job="j"'), ctx=two)] == [[2.0, 2.0]]
            assert await run_query(storage, _m('job="j"')) == []
            results = await storage.read(one, ReadRequest((Query(MIN_TIME, MAX_TIME, (_m('job=""'),)),)))
            assert [r.series for r in results] == [[]]

        self.run(body, "tenants")

    # -- native histograms ---------------------------------------------------------

    def test_histograms_round_trip(self) -> None:
        histograms = [
            _hist(1000),
            _hist(2000, 7, 20.0, is_float=True),
            _hist(3000, 0, float_from_bits(STALE_NAN_BITS)),
        ]
        series = make_series({"__name__": "h"}, histograms=histograms)

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)
            assert snapshot(await run_query(storage, _m('__name__="h"'))) == snapshot([series])
            middle = await run_query(storage, _m('__name__="h"'), start=1500, end=2000)
            assert snapshot(middle) == snapshot([make_series({"__name__": "h"}, histograms=histograms[1:2])])
            assert await run_query(storage, _m('__name__="h"'), start=3001) == []

        self.run(body, "histograms")

    def test_histograms_idempotent_and_conflicting(self) -> None:
        labels = {"__name__": "h"}

        def stale(timestamp: int) -> Histogram:  # a new NaN object each time: == would be False
            return _hist(timestamp, 0, float_from_bits(STALE_NAN_BITS))

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, histograms=[_hist(2000), stale(3000)]))
            retry = make_series(labels, histograms=[stale(3000), _hist(1000), _hist(2000)])
            await write(storage, retry)
            floats = make_series({"__name__": "f"}, [(1, 1.0)])
            conflicting = make_series(labels, histograms=[_hist(4000), _hist(2000, count=6)])
            with pytest.raises(SampleConflict):
                await write(storage, floats, conflicting)
            found = await run_query(storage, _m('__name__=~".+"'))
            expected = make_series(labels, histograms=[_hist(1000), _hist(2000), stale(3000)])
            assert snapshot(found) == snapshot([expected])

        self.run(body, "histograms", "out_of_order")

    # -- scale -----------------------------------------------------------------------

    def test_many_series(self) -> None:
        count = 2000
        labels = [{"__name__": "load", "job": f"j{i % 20}", "instance": f"i{i:04d}"} for i in range(count)]
        series = [make_series(labels[i], [(1, float(i)), (2, 0.5)]) for i in range(count)]
        random.Random(3).shuffle(series)

        async def body(storage: RemoteStorage) -> None:
            await write(storage, *series)
            everything = await run_query(storage, _m('__name__="load"'))
            assert len(everything) == count
            assert [s.labels for s in everything] == sorted(s.labels for s in series)
            job7 = await run_query(storage, _m('job="j7"'))
            assert [s.labels.get("instance") for s in job7] == [f"i{i:04d}" for i in range(7, count, 20)]
            one = await run_query(storage, _m('instance="i0042"'), end=1)
            assert [(s.labels.get("job"), list(s.values)) for s in one] == [("j2", [42.0])]
            both = await run_query(storage, _m('job="j3"'), _m('instance=~"i00[0-9]+"'))
            assert [s.labels.get("instance") for s in both] == ["i0003", "i0023", "i0043", "i0063", "i0083"]
            excluded = await run_query(storage, _m('__name__="load"'), _m('job!~"j1?[0-9]"'))
            assert excluded == []

        self.run(body)
