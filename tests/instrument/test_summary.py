"""Summary: count and sum, quantile estimates within their rank error, the sliding window."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest

from remote_storage.instrument import InvalidLabelName, InvalidQuantiles, Registry, Summary
from remote_storage.instrument import summary as summary_module
from remote_storage.instrument.quantiles import SlidingQuantiles, TargetedQuantiles

TARGETS = {0.5: 0.05, 0.9: 0.01, 0.99: 0.001}


def test_summary_without_quantiles_counts_and_sums() -> None:
    registry = Registry()
    summary = Summary("size_bytes", "Sizes.", ["kind"], registry=registry)
    for value in (1, 2.5, 100):
        summary.labels("a").observe(value)
    [family] = registry.collect()
    assert family.type == "summary"
    assert [(s.name, dict(s.labels), s.value) for s in family.samples] == [
        ("size_bytes_count", {"kind": "a"}, 3.0),
        ("size_bytes_sum", {"kind": "a"}, 103.5),
    ]


def test_quantile_samples_come_first_with_quantile_labels() -> None:
    registry = Registry()
    summary = Summary("s", "S.", quantiles=[0.99, 0.5], registry=registry)
    for value in range(1, 11):
        summary.observe(value)
    [family] = registry.collect()
    assert [(s.name, dict(s.labels), s.value) for s in family.samples] == [
        ("s", {"quantile": "0.5"}, 5.0),
        ("s", {"quantile": "0.99"}, 10.0),
        ("s_count", {}, 10.0),
        ("s_sum", {}, 55.0),
    ]


DISTRIBUTIONS = ["uniform", "exponential", "sorted", "reversed", "interleaved", "reversed_blocks"]


def stream_of(distribution: str, n: int) -> list[float]:
    rng = random.Random(42)
    makers = {
        "uniform": lambda: [rng.random() for _ in range(n)],
        "exponential": lambda: [rng.expovariate(1.0) for _ in range(n)],
        "sorted": lambda: [float(i) for i in range(n)],
        "reversed": lambda: [float(n - i) for i in range(n)],
        "interleaved": lambda: [float(i if i % 2 else n - i) for i in range(n)],
        "reversed_blocks": lambda: [float(n - (i % 500) * 40 - i // 500) for i in range(n)],
    }
    return makers[distribution]()


@pytest.mark.parametrize("targets", [TARGETS, {0.1: 0.01, 0.5: 0.001, 0.75: 0.02}], ids=["go", "tight"])
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_estimates_are_within_their_rank_error(distribution: str, targets: dict[float, float]) -> None:
    n = 20_000
    values = stream_of(distribution, n)
    stream = TargetedQuantiles(targets)
    for value in values:
        stream.insert(value)
    ordered = sorted(values)
    for q, error in targets.items():
        estimate = stream.query(q)
        # Every rank the estimate occupies in the data; one of them must be close enough.
        lowest = ordered.index(estimate) + 1
        highest = len(ordered) - ordered[::-1].index(estimate)
        wanted = q * n
        assert lowest - error * n <= wanted <= highest + error * n, (q, estimate, lowest, highest)
    assert stream.count() == n


def test_memory_stays_bounded() -> None:
    stream = TargetedQuantiles(TARGETS)
    for i in range(100_000):
        stream.insert(float(i % 977))
    stream.query(0.5)
    assert len(stream._entries) < 2_000


def test_small_streams_are_answered_exactly() -> None:
    stream = TargetedQuantiles({0.5: 0.05})
    assert math.isnan(stream.query(0.5))
    for value in (3.0, 1.0, 2.0):
        stream.insert(value)
    assert stream.query(0.5) == 2.0


def test_sliding_window_forgets_old_observations() -> None:
    window = SlidingQuantiles({0.5: 0.05}, max_age=10.0, age_buckets=5, now=1000.0)
    for _ in range(100):
        window.observe(1.0, now=1000.5)
    assert window.query((0.5,), now=1001.0) == [1.0]
    for _ in range(100):
        window.observe(5.0, now=1005.0)
    assert window.query((0.5,), now=1007.0) in ([1.0], [5.0])  # both still in the window
    # Ten seconds (plus one bucket) after the first observations, only the later ones remain.
    assert window.query((0.5,), now=1012.0) == [5.0]
    assert all(math.isnan(v) for v in window.query((0.5,), now=1030.0))
    window.observe(7.0, now=1030.5)
    assert window.query((0.5,), now=1031.0) == [7.0]


def test_summary_window_follows_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SimpleNamespace(now=500.0)
    monkeypatch.setattr(
        summary_module, "time", SimpleNamespace(monotonic=lambda: clock.now, time=lambda: 1.0)
    )
    registry = Registry()
    summary = Summary("s", "S.", quantiles=[0.5], max_age=60, registry=registry)
    summary.observe(2.0)
    assert registry.get_sample_value("s", {"quantile": "0.5"}) == 2.0
    clock.now += 61 + 12  # past the window and one age bucket
    assert math.isnan(registry.get_sample_value("s", {"quantile": "0.5"}) or 0.0)
    assert registry.get_sample_value("s_count") == 1.0  # count and sum are for all time


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"quantiles": [0]}, "strictly between 0 and 1"),
        ({"quantiles": [1]}, "strictly between 0 and 1"),
        ({"quantiles": [1.5]}, "strictly between 0 and 1"),
        ({"quantiles": {0.5: 0}}, "rank error 0"),
        ({"quantiles": {0.5: 1.5}}, "rank error"),
        ({"quantiles": [0.5], "max_age": 0}, "max_age"),
        ({"quantiles": [0.5], "max_age": math.inf}, "max_age"),
        ({"quantiles": [0.5], "age_buckets": 0}, "age_buckets"),
        ({"quantiles": [0.5], "age_buckets": 2.5}, "age_buckets"),
    ],
)
def test_bad_quantile_settings_fail_at_definition(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuantiles, match=message) as caught:
        Summary("s", "S.", registry=None, **options)  # type: ignore[arg-type]
    assert "'s'" in str(caught.value)


def test_quantile_is_a_reserved_label() -> None:
    with pytest.raises(InvalidLabelName, match="quantile"):
        Summary("s", "S.", ["quantile"], registry=None)


def test_summary_time() -> None:
    registry = Registry()
    summary = Summary("job_seconds", "Job.", registry=registry)

    @summary.time()
    def job() -> str:
        return "done"

    assert job() == "done"
    with summary.time():
        pass
    assert registry.get_sample_value("job_seconds_count") == 2.0
    assert 0 <= (registry.get_sample_value("job_seconds_sum") or -1) < 1
