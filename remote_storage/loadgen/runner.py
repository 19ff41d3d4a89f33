"""One load run: render bodies ahead, send them, time the window, summarize.

>>> spec = WorkloadSpec(series=2_000, protocol=Protocol.V2)  # doctest: +SKIP
>>> options = SendOptions("http://127.0.0.1:9201/api/v1/write", requests=20)  # doctest: +SKIP
>>> summary = asyncio.run(run_load(Workload(spec), options))  # doctest: +SKIP
>>> summary.ok, summary.tally.samples_accepted  # doctest: +SKIP
(True, 40000)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from remote_storage.loadgen.bodies import BodySource
from remote_storage.loadgen.progress import Progress
from remote_storage.loadgen.report import Summary
from remote_storage.loadgen.sender import Sender, SendOptions
from remote_storage.loadgen.workload import Workload

__all__ = ["request_count", "run_load"]


def _describe(workload: Workload, options: SendOptions) -> dict[str, Any]:
    spec = workload.spec
    return {
        "description": workload.describe(),
        "protocol": spec.protocol.value,
        "series": spec.series,
        "labels": spec.labels,
        "series_per_request": spec.series_per_request,
        "samples_per_series": spec.samples_per_series,
        "values": spec.values.value,
        "churn_per_minute": spec.churn,
        "interval_seconds": spec.interval_ms / 1000,
        "start_ms": spec.start_ms,
        "seed": spec.seed,
        "concurrency": options.concurrency,
        "rate": options.rate,
        "request_limit": options.request_limit,
        "duration_limit_seconds": options.duration,
    }


def request_count(workload: Workload, options: SendOptions) -> int | None:
    """How many requests the run can send at most; None when only its duration bounds it.

    A run bounded by time at a set rate sends no more than ``rate * duration``
    samples (plus the first request), so no more rounds than that, plus one.
    """
    limit = options.request_limit
    if options.rate is None or options.duration is None:
        return limit
    spec = workload.spec
    rounds = math.ceil(options.rate * options.duration / (spec.series * spec.samples_per_series)) + 1
    needed = rounds * workload.requests_per_round
    return needed if limit is None else min(limit, needed)


async def _stop_after(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()


async def _close_on(stop: asyncio.Event, source: BodySource) -> None:
    await stop.wait()
    await source.close()


async def run_load(
    workload: Workload,
    options: SendOptions,
    *,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> Summary:
    """Send ``workload`` as ``options`` say and return the summary.

    Bodies are rendered before the measured window starts (see
    :mod:`.bodies`); the window runs from the first request sent to the
    last response read. Setting ``stop`` (say, on SIGINT) ends the run
    early: no new requests start, those in flight finish.
    """
    stop = asyncio.Event() if stop is None else stop
    sender = Sender(options, workload.spec.protocol)
    elapsed = 0.0
    source = BodySource(workload, request_count(workload, options), options.buffer_bytes)
    async with source:
        helpers = [asyncio.create_task(_close_on(stop, source))]
        try:
            preparing = asyncio.create_task(source.prepare())
            await asyncio.wait([preparing, helpers[0]], return_when=asyncio.FIRST_COMPLETED)
            if not preparing.done():
                preparing.cancel()
            else:
                preparing.result()
            if not stop.is_set():
                if options.duration is not None:
                    helpers.append(asyncio.create_task(_stop_after(options.duration, stop)))
                if progress is not None:
                    helpers.append(asyncio.create_task(progress.run(sender.tally)))
                async with sender:
                    started = time.perf_counter()
                    await sender.run(source, stop)
                    elapsed = time.perf_counter() - started
        finally:
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if progress is not None:
                progress.finish()
    return Summary.of(options.url, _describe(workload, options), elapsed, sender.tally, source.stats)
