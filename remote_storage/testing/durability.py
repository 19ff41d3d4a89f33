"""Checks that acknowledged data outlives the backend object and its process.

What is checked, and what cannot be:

* **close and reopen**: everything acknowledged is there after ``close()``
  and :meth:`~Harness.reopen`, retries stay no-ops and conflicts are still
  detected. Catches a backend that keeps data only in memory.
* **SIGKILL**: the backend runs in a child process opened from
  :meth:`~Harness.storage_url`; after the last acknowledgement the child is
  killed (no ``close``, no flush at exit). Everything acknowledged must be
  there; the request in flight at the kill is there whole or not at all.
  Catches data buffered in the process (an unflushed file buffer, a batch
  written at close or by a timer) and torn requests.
* **fsync**: a killed process cannot lose what it handed to the kernel, so
  only a crash of the machine shows a missing ``fsync``, which a test cannot
  cause. A backend that syncs its files from Python sets
  ``fsync_observable = True``; the kit then counts calls to ``os.fsync`` and
  ``os.fdatasync`` (looked up on the ``os`` module at call time) and requires
  one during every write that stores new data. Syncs made inside C libraries
  (SQLite, a database client) are invisible to it: for those, durability
  rests on the database's own settings (SQLite ``synchronous``, PostgreSQL
  ``fsync``/``synchronous_commit``), which the backend documents.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from remote_storage.errors import SampleConflict
from remote_storage.storage import Context, Labels, RemoteStorage, TimeSeries, float_from_bits
from remote_storage.testing.crash import CrashRequest, write_then_kill
from remote_storage.testing.expect import expect, expect_refused, expect_series
from remote_storage.testing.harness import Harness
from remote_storage.testing.values import (
    SPECIAL_VALUES,
    histogram_sample,
    make_series,
    matcher,
    run_query,
    write,
)

__all__ = ["DurabilityChecks"]

_ALL = matcher('__name__=~".+"')


def _expected(requests: list[CrashRequest], tenant: str) -> list[TimeSeries]:
    merged: dict[Labels, dict[int, float]] = {}
    for request in requests:
        if request.tenant == tenant:
            for series in request.series:
                merged.setdefault(series.labels, {}).update(series.samples())
    return [
        TimeSeries(labels, sorted(samples), [samples[t] for t in sorted(samples)])
        for labels, samples in sorted(merged.items())
    ]


@contextmanager
def _counting_syncs() -> Iterator[Callable[[], int]]:
    """Count calls of ``os.fsync``/``os.fdatasync`` from any thread while inside."""
    calls = [0]
    lock = threading.Lock()
    originals = {name: getattr(os, name) for name in ("fsync", "fdatasync") if hasattr(os, name)}

    def wrap(original: Callable[[int], None]) -> Callable[[int], None]:
        def counted(fd: int) -> None:
            original(fd)
            with lock:
                calls[0] += 1

        return counted

    for name, original in originals.items():
        setattr(os, name, wrap(original))
    try:
        yield lambda: calls[0]
    finally:
        for name, original in originals.items():
            setattr(os, name, original)


class DurabilityChecks(Harness):
    """Close and reopen, SIGKILL, fsync."""

    def _tenants(self) -> list[Context]:
        if "tenants" in self.unsupported:
            return [Context()]
        return [Context(), Context(tenant="t1"), Context(tenant="team a/ü")]

    def test_acknowledged_writes_survive_reopen(self) -> None:
        self.require("durability")
        tenants = self._tenants()
        special = make_series(
            {"__name__": "special"}, [(i, float_from_bits(p)) for i, p in enumerate(SPECIAL_VALUES)]
        )
        many = [
            make_series({"__name__": "many", "i": f"{i:03d}"}, [(1000, float(i)), (2000, -i / 3)])
            for i in range(300)
        ]
        with_histograms = "histograms" not in self.unsupported
        hist = make_series(
            {"__name__": "hist"}, histograms=[histogram_sample(1000), histogram_sample(2000, is_float=True)]
        )
        late = make_series({"__name__": "special"}, [(30, 0.5)])

        def contents(ctx: Context, reopened: bool) -> list[TimeSeries]:
            series = [*many, make_series({"__name__": "tenant", "t": ctx.tenant}, [(5, 5.0)])]
            series.append(
                make_series(special.labels, [*special.samples(), *([(30, 0.5)] if reopened else [])])
            )
            if with_histograms and ctx.tenant == tenants[0].tenant:
                series.append(hist)
            return sorted(series, key=lambda s: s.labels)

        async def check(storage: RemoteStorage, when: str, reopened: bool) -> None:
            for ctx in tenants:
                found = await run_query(storage, _ALL, ctx=ctx)
                expect_series(found, contents(ctx, reopened), f"tenant {ctx.tenant!r} {when}")

        async def main() -> None:
            storage = await self.started(self.make_storage())
            try:
                for ctx in tenants:
                    tenant_series = make_series({"__name__": "tenant", "t": ctx.tenant}, [(5, 5.0)])
                    await write(storage, special, tenant_series, *many[:150], ctx=ctx)
                    await write(storage, *many[150:], ctx=ctx)
                if with_histograms:
                    await write(storage, hist, ctx=tenants[0])
            finally:
                await storage.close()
            storage = await self.started(self.reopen())
            try:
                await check(storage, "after close() and reopen()", False)
                await write(
                    storage, special, *many[:10], ctx=tenants[0]
                )  # a retry after the reopen: stored once
                conflict = make_series({"__name__": "special"}, [(0, 1.0), (40, 4.0)])
                what = "after reopen(), a sample at t=0 with another value than the stored one"
                await expect_refused(SampleConflict, write(storage, late, conflict, ctx=tenants[0]), what)
                for ctx in tenants:
                    await write(storage, late, ctx=ctx)
                await check(storage, "after retries and a refused conflict on the reopened backend", True)
            finally:
                await storage.close()
            storage = await self.started(self.reopen())
            try:
                await check(storage, "after a second close() and reopen()", True)
            finally:
                await storage.close()

        self.execute(main())

    def test_acknowledged_writes_survive_kill(self) -> None:
        self.require("durability")
        url = self.storage_url()
        expect(
            url is not None,
            f"{type(self).__name__}: the crash check opens the backend in a child process with "
            f"storage_factory(storage_url()); implement storage_url() (and set storage_factory for a backend "
            f"not registered by its URL scheme), or declare 'durability' unsupported",
        )
        assert url is not None
        tenants = [ctx.tenant for ctx in self._tenants()]
        requests = []
        for number in range(24):
            time = 1000 * (number + 1)
            series = tuple(
                make_series(
                    {"__name__": "crash", "s": str(i)},
                    [
                        (time, float_from_bits(SPECIAL_VALUES[(number + i) % len(SPECIAL_VALUES)])),
                        (time + 1, number + i / 8),
                    ],
                )
                for i in range(3)
            )
            requests.append(CrashRequest(tenants[number % len(tenants)], series))
        requests.append(requests[5])  # a retry: acknowledged, stored once
        last = CrashRequest(
            tenants[0],
            tuple(make_series({"__name__": "crash", "s": str(i)}, [(99_000, 9.0)]) for i in range(5)),
        )
        outcome = write_then_kill(
            self.storage_factory, url, requests, last, self.tmp_path / "crash-child.log"
        )

        async def main() -> None:
            storage = await self.started(self.reopen())
            try:
                for tenant in tenants:
                    found = await run_query(storage, _ALL, ctx=Context(tenant=tenant))
                    with_last = _expected([*outcome.acknowledged, outcome.in_flight], tenant)
                    if tenant == last.tenant and any(99_000 in s.timestamps for s in found):
                        expect_series(
                            found, with_last, f"tenant {tenant!r} after SIGKILL, with the request in flight"
                        )
                    else:
                        expected = _expected(outcome.acknowledged, tenant)
                        expect_series(
                            found, expected, f"tenant {tenant!r} after SIGKILL of the backend's process"
                        )
            finally:
                await storage.close()

        self.execute(main())

    def test_acknowledged_writes_were_synced(self) -> None:
        self.require("durability")
        if not self.fsync_observable:
            pytest.skip(
                f"{type(self).__name__} does not set fsync_observable (syncs made inside C libraries "
                "cannot be observed; see remote_storage.testing.durability)"
            )

        async def body(storage: RemoteStorage) -> None:
            with _counting_syncs() as syncs:
                for number in range(5):
                    before = syncs()
                    series = make_series({"__name__": "synced"}, [(number, float(number))])
                    await write(storage, series)
                    expect(
                        syncs() > before,
                        f"write {number} of {series.labels} at timestamp {number} was acknowledged without "
                        "a call to os.fsync or os.fdatasync (fsync_observable is set)",
                    )

        self.run(body)
