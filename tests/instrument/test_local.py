"""Local metrics: lock-free tallies of one thread, flushed into the shared metric."""

from __future__ import annotations

import gc

import pytest

from remote_storage.instrument import (
    Counter,
    Histogram,
    IntCounter,
    LabelValuesRequired,
    LocalCounter,
    LocalIntCounter,
    Registry,
)
from tests.support.net import poll_until

WAIT = 10.0


@pytest.fixture
def registry() -> Registry:
    return Registry()


def test_local_counter_flushes_on_flush_and_on_exit(registry: Registry) -> None:
    counter = Counter("items", "Items.", ["kind"], registry=registry)
    with counter.labels("a").local(interval=None) as local:
        assert isinstance(local, LocalCounter)
        for _ in range(10):
            local.inc()
        local.inc(2.5)
        assert local.pending == 12.5
        assert registry.get_sample_value("items_total", {"kind": "a"}) == 0.0
        local.flush()
        assert registry.get_sample_value("items_total", {"kind": "a"}) == 12.5
        assert local.pending == 0
        local.inc()
    assert registry.get_sample_value("items_total", {"kind": "a"}) == 13.5


def test_local_counter_is_flushed_periodically_even_when_idle(registry: Registry) -> None:
    counter = Counter("items", "Items.", registry=registry)
    local = counter.local(interval=0.05)
    local.inc(3)
    poll_until(lambda: registry.get_sample_value("items_total") == 3.0 or None, WAIT, "a periodic flush")
    local.inc()
    poll_until(lambda: registry.get_sample_value("items_total") == 4.0 or None, WAIT, "a second flush")
    local.flush()
    assert registry.get_sample_value("items_total") == 4.0


def test_local_is_flushed_when_collected(registry: Registry) -> None:
    counter = Counter("items", "Items.", registry=registry)
    local = counter.local(interval=None)
    local.inc(7)
    del local
    gc.collect()
    assert registry.get_sample_value("items_total") == 7.0


def test_negative_amounts_fail_the_flush_and_are_dropped(registry: Registry) -> None:
    counter = Counter("items", "Items.", registry=registry)
    local = counter.local(interval=None)
    local.inc(1)
    local.inc(-5)
    with pytest.raises(ValueError, match=r"negative amounts totalling -4.0 since its last flush"):
        local.flush()
    local.inc(2)
    local.flush()
    assert registry.get_sample_value("items_total") == 2.0


def test_int_counter_local_stays_integer(registry: Registry) -> None:
    counter = IntCounter("sent_bytes", "Sent.", registry=registry)
    with counter.local(interval=None) as local:
        assert isinstance(local, LocalIntCounter)
        local.inc(2**53)
        local.inc()
    [family] = counter.collect()
    assert family.samples[0].value == 2**53 + 1


def test_locals_of_a_labelled_family_itself_are_refused(recwarn: pytest.WarningsRecorder) -> None:
    with pytest.raises(LabelValuesRequired):
        Counter("c", "C.", ["kind"], registry=None).local()
    with pytest.raises(LabelValuesRequired):
        Histogram("h", "H.", ["kind"], registry=None).local()
    gc.collect()
    assert not recwarn.list  # the half-made locals were collected quietly


@pytest.mark.parametrize("interval", [0, -1.0])
def test_flush_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        Counter("c", "C.", registry=None).local(interval=interval)


def test_local_histogram_moves_buckets_and_sum_together(registry: Registry) -> None:
    histogram = Histogram("latency", "L.", buckets=[1, 2], registry=registry)
    with histogram.local(interval=None) as local:
        for value in (0.5, 1.5, 1.5, 5, float("nan")):
            local.observe(value)
        assert local.pending == 5
        assert registry.get_sample_value("latency_count") == 0.0
    assert registry.get_sample_value("latency_bucket", {"le": "1.0"}) == 1.0
    assert registry.get_sample_value("latency_bucket", {"le": "2.0"}) == 3.0
    assert registry.get_sample_value("latency_bucket", {"le": "+Inf"}) == 5.0
    assert registry.get_sample_value("latency_count") == 5.0


def test_local_histogram_flushes_on_the_first_observe_after_its_interval(registry: Registry) -> None:
    histogram = Histogram("latency", "L.", buckets=[1], registry=registry)
    local = histogram.local(interval=0.05)
    local.observe(0.5)
    poll_until(lambda: local._due or None, WAIT, "the flusher marking the local due")
    assert registry.get_sample_value("latency_count") == 0.0  # only its own thread moves it
    local.observe(0.5)
    assert registry.get_sample_value("latency_count") == 2.0
    assert registry.get_sample_value("latency_sum") == 1.0
    assert local.pending == 0


def test_local_histogram_time(registry: Registry) -> None:
    histogram = Histogram("job_seconds", "Job.", registry=registry)
    with histogram.local(interval=None) as local:
        with local.time():
            pass
        local.time()(lambda: None)()
    assert registry.get_sample_value("job_seconds_count") == 2.0
