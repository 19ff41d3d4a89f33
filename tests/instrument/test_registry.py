"""Registries: registration, name clashes, custom collectors, collection order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from remote_storage.instrument import (
    REGISTRY,
    Counter,
    DuplicateMetricName,
    Gauge,
    Histogram,
    MetricFamily,
    Registry,
    Sample,
)


class QueueDepth:
    """A custom collector: any object with collect() will do."""

    def __init__(self, depth: float) -> None:
        self.depth = depth
        self.collected = 0

    def collect(self) -> Iterator[MetricFamily]:
        self.collected += 1
        yield MetricFamily(
            "queue_depth",
            "gauge",
            "Items waiting, by queue.",
            samples=[Sample("queue_depth", {"queue": "write"}, self.depth)],
        )


def test_custom_collector_is_collected_on_every_scrape() -> None:
    registry = Registry()
    collector = QueueDepth(3)
    registry.register(collector)
    assert registry.get_sample_value("queue_depth", {"queue": "write"}) == 3.0
    collector.depth = 5
    assert registry.get_sample_value("queue_depth", {"queue": "write"}) == 5.0
    assert registry.get_sample_value("queue_depth") is None
    assert registry.get_sample_value("queue_depth", {"queue": "read"}) is None


def test_collector_without_describe_is_collected_once_at_registration() -> None:
    registry = Registry()
    collector = QueueDepth(1)
    registry.register(collector)
    assert collector.collected == 1
    with pytest.raises(DuplicateMetricName, match="'queue_depth'"):
        registry.register(QueueDepth(2))


def test_collector_with_empty_describe_skips_the_name_check() -> None:
    class Undescribed(QueueDepth):
        def describe(self) -> list[MetricFamily]:
            return []

    registry = Registry()
    collector = Undescribed(1)
    registry.register(collector)
    registry.register(Undescribed(2))
    assert collector.collected == 0


@pytest.mark.parametrize(
    ("first", "second", "clash"),
    [
        ((Counter, "jobs"), (Counter, "jobs_total"), "'jobs'"),  # the same counter, spelt two ways
        ((Counter, "jobs"), (Gauge, "jobs_total"), "'jobs_total'"),
        ((Gauge, "jobs"), (Gauge, "jobs"), "'jobs'"),
        ((Histogram, "h"), (Gauge, "h_bucket"), "'h_bucket'"),
        ((Histogram, "h"), (Counter, "h_count"), "'h_count'"),
        ((Gauge, "h_sum"), (Histogram, "h"), "'h_sum'"),
    ],
)
def test_duplicate_names_are_refused(
    first: tuple[type[Counter | Gauge | Histogram], str],
    second: tuple[type[Counter | Gauge | Histogram], str],
    clash: str,
) -> None:
    registry = Registry()
    first_type, first_name = first
    first_type(first_name, "First.", registry=registry)
    second_type, second_name = second
    with pytest.raises(DuplicateMetricName, match=clash) as caught:
        second_type(second_name, "Second.", registry=registry)
    assert "already registered" in str(caught.value)
    assert len(list(registry.collect())) == 1


def test_same_name_in_two_registries_is_fine() -> None:
    Counter("jobs", "J.", registry=Registry())
    Counter("jobs", "J.", registry=Registry())


def test_registering_the_same_collector_twice_is_refused() -> None:
    registry = Registry()
    counter = Counter("jobs", "J.", registry=registry)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(counter)


def test_unregister_frees_the_names() -> None:
    registry = Registry()
    counter = Counter("jobs", "J.", registry=registry)
    registry.unregister(counter)
    assert list(registry.collect()) == []
    Counter("jobs", "J.", registry=registry).inc()
    assert registry.get_sample_value("jobs_total") == 1.0
    with pytest.raises(KeyError, match="not registered"):
        registry.unregister(counter)


def test_families_come_in_registration_order() -> None:
    registry = Registry()
    Gauge("zeta", "Z.", registry=registry)
    registry.register(QueueDepth(1))
    Counter("alpha", "A.", registry=registry)
    assert [family.name for family in registry.collect()] == ["zeta", "queue_depth", "alpha"]


def test_describe_and_collect_give_name_type_help_and_unit() -> None:
    registry = Registry()
    Histogram("read", "Read.", unit="bytes", registry=registry)
    [family] = registry.collect()
    assert (family.name, family.type, family.help, family.unit) == (
        "read_bytes",
        "histogram",
        "Read.",
        "bytes",
    )


def test_metrics_register_in_the_default_registry_unless_told_otherwise() -> None:
    counter = Counter("remote_storage_test_default_registry", "Only in this test.")
    try:
        counter.inc()
        assert REGISTRY.get_sample_value("remote_storage_test_default_registry_total") == 1.0
    finally:
        REGISTRY.unregister(counter)
