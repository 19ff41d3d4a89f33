"""Checks under load: concurrent writers and readers, concurrent retries and conflicts, large data.

The server calls ``write`` and ``process_query`` concurrently on one backend
object (one coroutine per request). A backend that awaits between checking
for conflicts and storing (a thread, a database round trip) needs a lock or
a transaction there; these checks make such races happen.
"""

from __future__ import annotations

import asyncio
import random

from remote_storage.errors import SampleConflict
from remote_storage.storage import Labels, RemoteStorage, TimeSeries, float_bits, float_from_bits
from remote_storage.testing.expect import describe, expect, expect_series, series_problems
from remote_storage.testing.harness import Harness
from remote_storage.testing.values import make_series, matcher, run_query, write

__all__ = ["LoadChecks"]

_ALL = matcher('__name__=~".+"')

WRITERS = 6
ROUNDS = 12
SHARED_SERIES = 8
READ_ROUNDS = 30


def _value(writer: int, round_: int, series: int) -> float:
    """A distinct value per sample, NaN payloads included, so a mixed-up sample shows."""
    if (writer + round_ + series) % 7 == 0:
        return float_from_bits(0x7FF8000000000000 | (writer << 16) | (round_ << 8) | series)
    return writer * 10_000 + round_ * 100 + series + 0.25


class LoadChecks(Harness):
    """Concurrency and size."""

    def test_concurrent_writers_and_readers(self) -> None:
        """Writers share series (each its own timestamps) and retry their last request; readers poll.

        Every acknowledged sample comes back exactly once with its bits;
        readers never see a duplicate timestamp or a wrong value.
        """
        shared = "out_of_order" not in self.unsupported  # else each writer keeps its own series in order

        def name(writer: int, series: int) -> Labels:
            return Labels.from_mapping(
                {"__name__": "cc", "s": str(series), "w": "" if shared else str(writer)}
            )

        labels = sorted({name(w, i) for w in range(WRITERS) for i in range(SHARED_SERIES)})
        model: dict[Labels, dict[int, float]] = {each: {} for each in labels}

        def request(writer: int, round_: int) -> list[TimeSeries]:
            rng = random.Random(writer * 1000 + round_)
            chosen = rng.sample(range(SHARED_SERIES), 3)
            time = round_ * 1000 + writer  # distinct per writer and round
            return [TimeSeries(name(writer, i), [time], [_value(writer, round_, i)]) for i in chosen]

        def visible(series: TimeSeries) -> TimeSeries:
            """The model's samples at the timestamps a reader got: what it must have got."""
            known = model.get(series.labels, {})
            times = [t for t in series.timestamps if t in known]
            return TimeSeries(series.labels, times, [known[t] for t in times])

        for w in range(WRITERS):
            for r in range(ROUNDS):
                for series in request(w, r):
                    model[series.labels][series.timestamps[0]] = series.values[0]
        done = asyncio.Event()

        async def writer(storage: RemoteStorage, number: int) -> None:
            for round_ in range(ROUNDS):
                await write(storage, *request(number, round_))
                if round_ % 3 == 2:  # a sender's retry of a request already stored
                    await write(storage, *request(number, round_ - 1))

        async def reader(storage: RemoteStorage, number: int) -> None:
            for read in range(READ_ROUNDS):
                if done.is_set():
                    return
                found = await run_query(storage, _ALL)
                # whatever is visible must be a correct subset of what is being written
                problems = series_problems(found, [visible(s) for s in found])
                expect(not problems, f"reader {number}, read {read} during concurrent writes: {problems[:5]}")
                await asyncio.sleep(0)

        async def body(storage: RemoteStorage) -> None:
            readers = [asyncio.create_task(reader(storage, n)) for n in range(2)]
            try:
                await asyncio.gather(*(writer(storage, n) for n in range(WRITERS)))
            finally:
                done.set()
            await asyncio.gather(*readers)
            expected = [
                TimeSeries(each, sorted(model[each]), [model[each][t] for t in sorted(model[each])])
                for each in labels
                if model[each]
            ]
            found = await run_query(storage, _ALL)
            expect_series(found, expected, f"after {WRITERS} concurrent writers with retries")

        self.run(body)

    def test_concurrent_conflicting_and_repeated_writes(self) -> None:
        """Two values for one sample at once: exactly one is stored, the other refused.

        Also four copies of one request at once (a sender and its retries):
        all succeed and the samples are stored once.
        """
        labels = {"__name__": "race"}

        async def body(storage: RemoteStorage) -> None:
            times = list(range(1000, 11_000, 1000))
            contenders = [(t, v) for t in times for v in (float(t), -float(t))]
            repeated = make_series({"__name__": "same"}, [(t, 0.5) for t in times])
            outcomes = await asyncio.gather(
                *(write(storage, make_series(labels, [(t, v)])) for t, v in contenders),
                *(write(storage, repeated) for _ in range(4)),
                return_exceptions=True,
            )
            for outcome in outcomes[len(contenders) :]:
                expect(outcome is None, f"a concurrent copy of the same request failed: {outcome!r}")
            stored: dict[int, float] = {}
            for (t, v), outcome in zip(contenders, outcomes, strict=False):
                if outcome is None:
                    expect(
                        t not in stored,
                        f'series {{__name__="race"}} at timestamp {t}: {describe(stored.get(t, 0.0))} '
                        f"and {describe(v)} were both acknowledged by concurrent writes "
                        "(one must raise SampleConflict)",
                    )
                    stored[t] = v
                else:
                    expect(
                        isinstance(outcome, SampleConflict),
                        f"concurrent write of t={t}: expected success or SampleConflict, got {outcome!r}",
                    )
            for t in times:
                expect(
                    t in stored,
                    f'series {{__name__="race"}} at timestamp {t}: both concurrent writes refused',
                )
            expected = [make_series(labels, sorted(stored.items())), repeated]
            expect_series(await run_query(storage, _ALL), expected, "after concurrent conflicting writes")

        self.run(body)

    def test_large_series_and_labels(self) -> None:
        """One series of 20,000 samples in one request; a label value of 2,000 bytes; 40 labels; Unicode.

        2,000 bytes: the service refuses longer values by default (``--max-label-value-length``),
        and a PostgreSQL index entry holds at most 2,704 bytes.
        """
        samples = [(t * 15_000, float_from_bits(float_bits(t / 7) ^ (t & 1))) for t in range(20_000)]
        long = make_series(
            {"__name__": "long", "v": "".join(chr(97 + i % 26) for i in range(2000))}, [(1, 1.0)]
        )
        wide = make_series({"__name__": "wide", **{f"l{i:02d}": f"v{i}" for i in range(40)}}, [(1, 2.0)])
        unicode = make_series({"__name__": "uni", "city": "Zürich ⚡ 東京", "q": 'a"b\\c'}, [(1, 3.0)])

        async def body(storage: RemoteStorage) -> None:
            big = make_series({"__name__": "big"}, samples)
            await write(storage, big, long, wide, unicode)
            found = await run_query(storage, matcher('__name__="big"'))
            expect_series(found, [big], "one series of 20,000 samples written in one request")
            middle = await run_query(
                storage, matcher('__name__="big"'), start=samples[5000][0], end=samples[5099][0]
            )
            expect_series(middle, [make_series({"__name__": "big"}, samples[5000:5100])], "100 samples of it")
            others = await run_query(storage, matcher('__name__=~"long|wide|uni"'))
            expect_series(
                others, sorted([long, wide, unicode], key=lambda s: s.labels), "long, wide, Unicode labels"
            )
            exact = await run_query(storage, matcher('city="Zürich ⚡ 東京"'))
            expect_series(exact, [unicode], "an equality matcher on a Unicode value")

        self.run(body)

    def test_many_series(self) -> None:
        count = 2000
        labels = [{"__name__": "load", "job": f"j{i % 20}", "instance": f"i{i:04d}"} for i in range(count)]
        series = [make_series(labels[i], [(1, float(i)), (2, 0.5)]) for i in range(count)]
        by_instance = {s.labels.get("instance"): s for s in series}
        shuffled = series[:]
        random.Random(3).shuffle(shuffled)

        async def body(storage: RemoteStorage) -> None:
            await write(storage, *shuffled)
            expect_series(
                await run_query(storage, _ALL), sorted(series, key=lambda s: s.labels), "2000 series"
            )
            job7 = [by_instance[f"i{i:04d}"] for i in range(7, count, 20)]
            expect_series(
                await run_query(storage, matcher('job="j7"')), sorted(job7, key=lambda s: s.labels), "job j7"
            )
            one = await run_query(storage, matcher('instance="i0042"'), end=1)
            expect_series(one, [make_series(labels[42], [(1, 42.0)])], "instance i0042 up to t=1")
            both = await run_query(storage, matcher('job="j3"'), matcher('instance=~"i00[0-9]+"'))
            wanted = [by_instance[f"i{i:04d}"] for i in (3, 23, 43, 63, 83)]
            expect_series(both, wanted, 'job="j3", instance=~"i00[0-9]+"')
            excluded = await run_query(storage, _ALL, matcher('job!~"j1?[0-9]"'))
            expect_series(excluded, [], 'job!~"j1?[0-9]"')

        self.run(body)
