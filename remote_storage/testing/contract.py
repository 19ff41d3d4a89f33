"""Checks of the read/write contract of :mod:`remote_storage.storage` on one backend object.

Round trips, bit-exact values, inclusive ranges, label order, every matcher
kind, idempotent retries, conflicts that store nothing of their request,
tenants, native histograms (stored, or refused with a 400-class error).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

import pytest

from remote_storage.errors import RemoteStorageError, SampleConflict
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
    SampleBatch,
    TimeSeries,
    WriteRequest,
    float_from_bits,
)
from remote_storage.testing.expect import expect, expect_refused, expect_series
from remote_storage.testing.harness import Harness
from remote_storage.testing.values import (
    MAX_TIME,
    MIN_TIME,
    SPECIAL_VALUES,
    STALE_NAN_BITS,
    histogram_sample,
    make_series,
    matcher,
    run_query,
    write,
)

__all__ = ["ContractChecks"]

_ALL = matcher('__name__=~".+"')

# The series of the matcher checks by their "id" label; each case lists the ids it selects.
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


def _ids(found: Sequence[TimeSeries], what: str) -> str:
    """The ``id`` labels of the matcher checks' series, once their order is checked."""
    labels = [s.labels for s in found]
    expect(labels == sorted(labels), f"{what}: series not sorted by label set: {[str(x) for x in labels]}")
    return "".join(sorted(s.labels.get("id") for s in found))


class ContractChecks(Harness):
    """Writing, reading back, matchers, conflicts, tenants and histograms."""

    # -- writing and reading back --------------------------------------------------

    def test_round_trip(self) -> None:
        up = make_series({"__name__": "up", "job": "node"}, [(1000, 1.0), (2000, 0.0), (3000, 1.0)])
        load = make_series({"__name__": "load", "job": "node"}, [(-5000, 0.25), (0, 1e300)])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, up, load)
            expect_series(await run_query(storage, matcher('job="node"')), [load, up], 'query {job="node"}')
            expect_series(await run_query(storage, matcher('__name__="up"')), [up], 'query {__name__="up"}')
            for t in range(4, 7):  # later writes append
                await write(storage, make_series({"__name__": "up", "job": "node"}, [(t * 1000, float(t))]))
            later = make_series(up.labels, [(3000, 1.0), (4000, 4.0), (5000, 5.0), (6000, 6.0)])
            found = await run_query(storage, matcher('__name__="up"'), start=3000)
            expect_series(found, [later], "query from t=3000 after three more writes")

        self.run(body)

    def test_a_working_backend_says_it_takes_writes(self) -> None:
        """``unavailable()`` is None while the backend works (``GET /-/ready`` answers 200)."""

        async def body(storage: RemoteStorage) -> None:
            expect(storage.unavailable() is None, f"a working backend reports {storage.unavailable()!r}")
            await write(storage, make_series({"__name__": "up"}, [(1000, 1.0)]))
            expect(storage.unavailable() is None, f"after a write it reports {storage.unavailable()!r}")

        self.run(body)

    def test_special_values_are_bit_exact(self) -> None:
        series = make_series(
            {"__name__": "s"}, [(i, float_from_bits(p)) for i, p in enumerate(SPECIAL_VALUES)]
        )

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)
            expect_series(await run_query(storage, _ALL), [series], "NaN payloads, -0.0, infinities")

        self.run(body)

    def test_range_is_inclusive(self) -> None:
        series = make_series({"__name__": "r"}, [(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)
            for start, end, times in [
                (20, 30, [20, 30]),
                (10, 40, [10, 20, 30, 40]),
                (40, 40, [40]),
                (10, 10, [10]),
                (11, 19, []),  # no sample in range: the series is omitted
                (41, 100, []),
                (30, 20, []),
                (MIN_TIME, MAX_TIME, [10, 20, 30, 40]),
            ]:
                expected = [make_series({"__name__": "r"}, [(t, t / 10) for t in times])] if times else []
                found = await run_query(storage, _ALL, start=start, end=end)
                expect_series(found, expected, f"query [{start}, {end}] (both ends inclusive)")

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
            found = [s.labels for s in await run_query(storage, _ALL)]
            wanted = sorted(Labels.from_mapping(n) for n in names)
            expect(
                found == wanted,
                f"series order: expected {[str(x) for x in wanted]}, got {[str(x) for x in found]}",
            )

        self.run(body)

    def test_empty_write_request(self) -> None:
        async def body(storage: RemoteStorage) -> None:
            await storage.write(Context(), WriteRequest())
            await write(storage, TimeSeries(Labels.from_mapping({"__name__": "e"})))
            metadata = MetricMetadata("e", MetricType.GAUGE, "help", "seconds")
            await storage.write(Context(), WriteRequest(metadata=[metadata]))
            expect_series(await run_query(storage, _ALL), [], "series written without samples")

        self.run(body)

    def test_lazy_labels(self) -> None:
        labels = Labels.from_mapping({"__name__": "lazy", "job": "j"})

        async def body(storage: RemoteStorage) -> None:
            for t in (1, 2):
                await write(storage, TimeSeries.lazy(("k",), lambda: labels, [t], [float(t)]))
            expected = TimeSeries(labels, [1, 2], [1.0, 2.0])
            expect_series(await run_query(storage, matcher('job="j"')), [expected], "series with lazy labels")

        self.run(body)

    def test_equal_labels_with_different_keys_are_one_series(self) -> None:
        labels = Labels.from_mapping({"__name__": "k"})

        async def body(storage: RemoteStorage) -> None:
            await write(
                storage,
                TimeSeries(labels, [3, 1], [3.0, 1.0], key="v1"),
                TimeSeries(labels, [2], [2.0], key=b"v2"),
            )
            await write(storage, TimeSeries(labels, [4], [4.0], key=("v3",)))
            expected = TimeSeries(labels, [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])
            expect_series(await run_query(storage, _ALL), [expected], "one label set under three keys")

        self.run(body, "out_of_order")

    def test_exemplars_are_accepted(self) -> None:
        exemplar = Exemplar(Labels.from_mapping({"trace_id": "abc"}), 0.5, 1000)
        series = make_series({"__name__": "ex"}, [(1000, 1.0)], exemplars=[exemplar])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)
            await write(storage, series)
            expected = make_series({"__name__": "ex"}, [(1000, 1.0)])
            expect_series(
                await run_query(storage, _ALL), [expected], "a sample written twice with an exemplar"
            )

        self.run(body)

    # -- matchers ------------------------------------------------------------------

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
        series = [make_series({**labels, "id": key}, [(1, 1.0)]) for key, labels in _MATCHER_SERIES.items()]
        described = {key: str(Labels.from_mapping({**ls, "id": key})) for key, ls in _MATCHER_SERIES.items()}

        async def body(storage: RemoteStorage) -> None:
            await write(storage, *series)
            for extra in ((), ('__name__="m"',)):
                query = "{" + ", ".join((*extra, *selectors)) + "}"
                found = _ids(await run_query(storage, *map(matcher, (*extra, *selectors))), query)
                expect(
                    found == expected,
                    f"{query} over {sorted(described.values())}: expected "
                    f"{[described[i] for i in expected]}, got {[described[i] for i in found]}",
                )

        self.run(body)

    def test_read_answers_queries_in_order(self) -> None:
        series = [make_series({**labels, "id": key}, [(1, 1.0)]) for key, labels in _MATCHER_SERIES.items()]

        async def body(storage: RemoteStorage) -> None:
            await write(storage, *series)
            queries = (
                Query(MIN_TIME, MAX_TIME, (matcher('a="y"'),)),
                Query(MIN_TIME, MAX_TIME, (matcher('b="1"'),)),
                Query(MIN_TIME, MAX_TIME, (matcher('a!~".*"'),)),
                Query(2, 3, (matcher('a="x"'),)),
                Query(MIN_TIME, MAX_TIME, (matcher('a="x"'),)),
            )
            results = await storage.read(Context(), ReadRequest(queries))
            found = [_ids(result.series, f"query {i} of read()") for i, result in enumerate(results)]
            expect(
                found == ["2", "13", "", "", "1"],
                f"read(): ids per query {found}, expected ['2', '13', '', '', '1']",
            )

        self.run(body)

    # -- order, duplicates and conflicts -------------------------------------------

    def test_out_of_order_samples_come_back_sorted(self) -> None:
        labels = {"__name__": "o"}

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, [(30, 3.0), (10, 1.0), (50, 5.0)]))
            await write(storage, make_series(labels, [(40, 4.0), (20, 2.0), (0, 0.0)]))
            expected = make_series(labels, [(t, t / 10) for t in range(0, 60, 10)])
            expect_series(await run_query(storage, _ALL), [expected], "samples written out of time order")

        self.run(body, "out_of_order")

    def test_shuffled_samples_come_back_sorted(self) -> None:
        samples = [(t, float(t)) for t in range(0, 5000, 5)]
        shuffled = samples[:]
        random.Random(7).shuffle(shuffled)

        async def body(storage: RemoteStorage) -> None:
            for i in range(0, len(shuffled), 100):
                await write(storage, make_series({"__name__": "sh"}, shuffled[i : i + 100]))
            expected = make_series({"__name__": "sh"}, samples)
            expect_series(await run_query(storage, _ALL), [expected], "1000 samples in shuffled requests")

        self.run(body, "out_of_order")

    def test_duplicate_sample_is_idempotent(self) -> None:
        def series() -> TimeSeries:  # new float objects each time
            return make_series({"__name__": "d"}, [(1, 1.0), (2, float_from_bits(STALE_NAN_BITS)), (3, -0.0)])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series())
            await write(storage, series())  # a retry after a lost response: NaN == NaN by bits
            await write(storage, make_series({"__name__": "d"}, [(3, -0.0), (3, -0.0), (4, 4.0), (4, 4.0)]))
            expected = make_series(series().labels, [*series().samples(), (4, 4.0)])
            expect_series(await run_query(storage, _ALL), [expected], "the same samples written again")

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
        before = make_series(labels, [(10, value(stored))])

        async def body(storage: RemoteStorage) -> None:
            await write(storage, before)
            other = make_series({"__name__": "other"}, [(10, 1.0)])
            bad = make_series(labels, [(20, 2.0), (10, value(sent))])
            exemplar = Exemplar(Labels.from_mapping({"trace_id": "t"}), 1.0, 10)
            also = make_series({"__name__": "also"}, [(5, 5.0)], exemplars=[exemplar])
            what = f"writing {bad.labels} at t=10 with {value(sent)!r} over the stored {value(stored)!r}"
            raised = await expect_refused(SampleConflict, write(storage, other, bad, also), what)
            expect(
                isinstance(raised, SampleConflict) and raised.timestamp == 10 and "job" in str(raised),
                f"{what}: SampleConflict must carry timestamp 10 and the label set, got {raised!r}",
            )
            expect_series(await run_query(storage, _ALL), [before], f"after the refused request ({what})")

        self.run(body)

    def test_conflict_within_one_request(self) -> None:
        async def body(storage: RemoteStorage) -> None:
            bad = make_series({"__name__": "w"}, [(1, 1.0), (2, 2.0), (1, 1.5)])
            good = make_series({"__name__": "fine"}, [(1, 1.0)])
            what = f"one request with two values at t=1 for {bad.labels}"
            await expect_refused(SampleConflict, write(storage, good, bad), what)
            expect_series(await run_query(storage, _ALL), [], f"after the refused request ({what})")

        self.run(body)

    def test_conflict_across_entries_of_one_series(self) -> None:
        labels = Labels.from_mapping({"__name__": "e"})

        async def body(storage: RemoteStorage) -> None:
            first = TimeSeries(labels, [1], [1.0], key="a")
            second = TimeSeries(labels, [1], [2.0], key="b")
            what = f"two entries of {labels} in one request, t=1 with 1.0 and 2.0"
            await expect_refused(SampleConflict, write(storage, first, second), what)
            expect_series(await run_query(storage, _ALL), [], f"after the refused request ({what})")

        self.run(body)

    def test_batch_requests_store_what_series_requests_store(self) -> None:
        """Requests in column form (:class:`SampleBatch`) keep every rule the series form keeps.

        A seeded run of requests in batch form: each series' next samples in
        shuffled order, and now and then a retried sample, the same series
        twice in one request, a late sample, a new series or a conflicting
        sample (the whole request must then store nothing). Reads are compared
        with a model of the rules at the end.
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
                except SampleConflict as refused:
                    expect(
                        conflict,
                        f"batch request {number} was refused as a conflict but holds none: {refused}",
                    )
                    continue
                expect(not conflict, f"batch request {number} holds a conflicting sample but was stored")
                for key, t, v in rows:
                    model.setdefault(key, {})[t] = v
            expected = [
                TimeSeries(
                    labels[key],
                    sorted(model[key]),
                    [float_from_bits(model[key][t]) for t in sorted(model[key])],
                )
                for key in sorted(model, key=labels.__getitem__)
            ]
            expect_series(await run_query(storage, _ALL), expected, "after 160 requests in batch form")

        self.run(body)

    # -- tenants -------------------------------------------------------------------

    def test_tenant_isolation(self) -> None:
        labels = {"__name__": "t", "job": "j"}
        one, two, odd = Context(tenant="t1"), Context(tenant="t2"), Context(tenant="team a/ü")

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, [(1, 1.0)]), ctx=one)
            # the same series and timestamp with another value is no conflict elsewhere
            await write(storage, make_series(labels, [(1, 2.0), (2, 2.0)]), ctx=two)
            await write(storage, make_series(labels, [(1, 3.0)]), ctx=odd)
            for ctx, samples in ((one, [(1, 1.0)]), (two, [(1, 2.0), (2, 2.0)]), (odd, [(1, 3.0)])):
                found = await run_query(storage, _ALL, ctx=ctx)
                expect_series(
                    found, [make_series(labels, samples)], f"tenant {ctx.tenant!r} reading its own data"
                )
            expect_series(await run_query(storage, _ALL), [], "tenant 'default', which wrote nothing")
            results = await storage.read(
                one, ReadRequest((Query(MIN_TIME, MAX_TIME, (matcher('job="j"'),)),))
            )
            expect_series(results[0].series, [make_series(labels, [(1, 1.0)])], "read() as tenant 't1'")

        self.run(body, "tenants")

    # -- native histograms ---------------------------------------------------------

    def test_histograms_round_trip(self) -> None:
        histograms = [
            histogram_sample(1000),
            histogram_sample(2000, 7, 20.0, is_float=True),
            histogram_sample(3000, 0, float_from_bits(STALE_NAN_BITS)),
        ]
        series = make_series({"__name__": "h"}, histograms=histograms)

        async def body(storage: RemoteStorage) -> None:
            await write(storage, series)
            expect_series(await run_query(storage, _ALL), [series], "integer, float and stale histograms")
            middle = await run_query(storage, _ALL, start=1500, end=2000)
            expected = make_series({"__name__": "h"}, histograms=histograms[1:2])
            expect_series(middle, [expected], "histograms in [1500, 2000]")
            expect_series(await run_query(storage, _ALL, start=3001), [], "histograms from t=3001")

        self.run(body, "histograms")

    def test_histograms_idempotent_and_conflicting(self) -> None:
        labels = {"__name__": "h"}

        def stale(timestamp: int) -> Histogram:  # a new NaN object each time: == on floats would be False
            return histogram_sample(timestamp, 0, float_from_bits(STALE_NAN_BITS))

        async def body(storage: RemoteStorage) -> None:
            await write(storage, make_series(labels, histograms=[histogram_sample(2000), stale(3000)]))
            retry = make_series(
                labels, histograms=[stale(3000), histogram_sample(1000), histogram_sample(2000)]
            )
            await write(storage, retry)
            floats = make_series({"__name__": "f"}, [(1, 1.0)])
            conflicting = make_series(
                labels, histograms=[histogram_sample(4000), histogram_sample(2000, count=6)]
            )
            what = "a histogram at t=2000 with another count"
            await expect_refused(SampleConflict, write(storage, floats, conflicting), what)
            expected = make_series(
                labels, histograms=[histogram_sample(1000), histogram_sample(2000), stale(3000)]
            )
            expect_series(await run_query(storage, _ALL), [expected], f"after the refused request ({what})")

        self.run(body, "histograms", "out_of_order")

    def test_unsupported_histograms_are_refused(self) -> None:
        """A backend without histograms answers 400 with a reason, never 2xx after dropping them."""
        if "histograms" not in self.unsupported:
            pytest.skip(f"{type(self).__name__} stores native histograms")
        floats = make_series({"__name__": "f"}, [(1, 1.0)])
        histograms = make_series({"__name__": "h"}, histograms=[histogram_sample(1000)])

        async def body(storage: RemoteStorage) -> None:
            what = "a request with a native histogram, to a backend declaring 'histograms' unsupported"
            raised = await expect_refused(RemoteStorageError, write(storage, floats, histograms), what)
            status = getattr(raised, "http_status", None)
            expect(
                status == 400 and str(raised) != "",
                f"{what}: expected a 400-class error with a message (InvalidRequest), "
                f"got {type(raised).__name__} (HTTP {status}): {raised!r}",
            )
            expect_series(await run_query(storage, _ALL), [], f"after the refused request ({what})")

        self.run(body)
