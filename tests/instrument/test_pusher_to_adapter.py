"""Integration: the pusher writes to the real service, and remote read gives the samples back."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from remote_storage.instrument import Counter, Gauge, Histogram, IntCounter, Pusher, Registry, start_pusher
from tests.instrument.remote import label_is, name_matches, remote_read
from tests.support.adapter import Adapter
from tests.support.net import poll_until

TIMEOUT = 20.0


def test_pushed_registry_is_read_back(adapter: Callable[..., Adapter]) -> None:
    service = adapter("memory://")
    registry = Registry()
    Counter("pushed_jobs", "Jobs.", ["kind"], registry=registry).labels('back"up\n').inc(3)
    IntCounter("pushed_bytes", "Bytes.", registry=registry).inc(2**40)
    Gauge("pushed_level", "Level.", registry=registry).set(-math.inf)
    Histogram("pushed_seconds", "Seconds.", buckets=[1], registry=registry).observe(0.25)

    async def push() -> None:
        async with Pusher(
            service.write_url, registry, interval=None, push_on_stop=False, labels={"job": "a"}
        ) as p:
            await p.push()

    asyncio.run(push())
    series = remote_read(service.read_url, name_matches("pushed_.*"), label_is("job", "a"))
    values = {str(s.labels): list(s.values) for s in series}
    assert values == {
        '{__name__="pushed_bytes_total", job="a"}': [float(2**40)],
        '{__name__="pushed_jobs_total", job="a", kind="back\\"up\\n"}': [3.0],
        '{__name__="pushed_level", job="a"}': [-math.inf],
        '{__name__="pushed_seconds_bucket", job="a", le="+Inf"}': [1.0],
        '{__name__="pushed_seconds_bucket", job="a", le="1.0"}': [1.0],
        '{__name__="pushed_seconds_count", job="a"}': [1.0],
        '{__name__="pushed_seconds_sum", job="a"}': [0.25],
    }


def test_pusher_thread_pushes_periodically(adapter: Callable[..., Adapter]) -> None:
    service = adapter("memory://")
    registry = Registry()
    ticks = Counter("pushed_ticks", "Ticks.", registry=registry)

    def pushed_values() -> list[float]:
        series = remote_read(service.read_url, name_matches("pushed_ticks_total"), label_is("job", "thread"))
        return [value for s in series for value in s.values]

    with start_pusher(service.write_url, registry, interval=0.1, labels={"job": "thread"}):
        for expected in (1.0, 2.0):
            ticks.inc()
            poll_until(
                lambda value=expected: value in pushed_values() or None, TIMEOUT, f"a push of {expected}"
            )
    ticks.inc()  # after stop: the last push carried 2, nothing pushes 3
    values = pushed_values()
    assert values == sorted(values)
    # The first push comes at once, before or after the first inc().
    assert {1.0, 2.0} <= set(values) <= {0.0, 1.0, 2.0}
