"""Counter, Gauge and Histogram (float and integer): values, labels, validation, thread safety."""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from remote_storage.instrument import (
    DEFAULT_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    IntCounter,
    IntGauge,
    InvalidBuckets,
    InvalidLabelName,
    InvalidMetricName,
    LabelValuesMismatch,
    LabelValuesRequired,
    Registry,
    StateSet,
    Summary,
    exponential_buckets,
    linear_buckets,
)


@pytest.fixture
def registry() -> Registry:
    return Registry()


# -- counters ---------------------------------------------------------------------------------------


def test_counter_counts_up_and_is_exposed_with_total_suffix(registry: Registry) -> None:
    counter = Counter("jobs", "Jobs done.", registry=registry)
    assert registry.get_sample_value("jobs_total") == 0.0
    counter.inc()
    counter.inc(2.5)
    counter.inc(0)
    assert registry.get_sample_value("jobs_total") == 3.5
    assert registry.get_sample_value("jobs") is None


def test_counter_name_given_with_total_suffix_loses_it(registry: Registry) -> None:
    Counter("jobs_total", "Jobs done.", registry=registry).inc()
    [family] = registry.collect()
    assert family.name == "jobs"
    assert [sample.name for sample in family.samples] == ["jobs_total"]


@pytest.mark.parametrize("amount", [-1, -0.001, -math.inf])
def test_counter_refuses_negative_increments(registry: Registry, amount: float) -> None:
    counter = Counter("jobs", "Jobs done.", ["kind"], registry=registry)
    with pytest.raises(ValueError, match=r"only go up.*Gauge"):
        counter.labels("a").inc(amount)
    assert registry.get_sample_value("jobs_total", {"kind": "a"}) == 0.0


def test_failed_update_releases_the_lock(registry: Registry) -> None:
    counter = Counter("jobs", "Jobs done.", registry=registry)
    with pytest.raises(TypeError):
        counter.inc(1j)  # type: ignore[arg-type]
    counter.inc()  # would deadlock if the failed update had kept the lock
    assert registry.get_sample_value("jobs_total") == 1.0


def test_name_is_joined_from_namespace_subsystem_name_and_unit(registry: Registry) -> None:
    Counter("read", "Bytes read.", namespace="rs", subsystem="sql", unit="bytes", registry=registry).inc(3)
    Gauge("size_bytes", "Size.", unit="bytes", registry=registry)
    assert registry.get_sample_value("rs_sql_read_bytes_total") == 3.0
    assert registry.get_sample_value("size_bytes") == 0.0


# -- gauges -----------------------------------------------------------------------------------------


def test_gauge_goes_up_down_and_is_set(registry: Registry) -> None:
    gauge = Gauge("in_flight", "In flight.", registry=registry)
    gauge.inc()
    gauge.inc(4)
    gauge.dec()
    gauge.dec(0.5)
    assert registry.get_sample_value("in_flight") == 3.5
    gauge.set(-7)
    assert registry.get_sample_value("in_flight") == -7.0


def test_gauge_set_to_current_time(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1_700_000_000.25)
    gauge = Gauge("last_success_seconds", "Last success.", ["job"], registry=registry)
    gauge.labels("compact").set_to_current_time()
    assert registry.get_sample_value("last_success_seconds", {"job": "compact"}) == 1_700_000_000.25


# -- histograms -------------------------------------------------------------------------------------


def test_histogram_buckets_are_cumulative_with_le_inclusive(registry: Registry) -> None:
    histogram = Histogram("latency_seconds", "Latency.", buckets=[0.1, 1, 5], registry=registry)
    for value in [0.05, 0.1, 0.5, 1.0, 1.0, 3, 7, 100]:
        histogram.observe(value)

    def bucket(le: str) -> float | None:
        return registry.get_sample_value("latency_seconds_bucket", {"le": le})

    assert bucket("0.1") == 2.0  # 0.05 and 0.1: a bound includes values equal to it
    assert bucket("1.0") == 5.0
    assert bucket("5.0") == 6.0
    assert bucket("+Inf") == 8.0
    assert registry.get_sample_value("latency_seconds_count") == 8.0
    assert registry.get_sample_value("latency_seconds_sum") == pytest.approx(112.65)


def test_histogram_samples_are_ordered_buckets_count_sum(registry: Registry) -> None:
    Histogram("h", "H.", buckets=[1, 2], registry=registry).observe(1.5)
    [family] = registry.collect()
    assert family.type == "histogram"
    assert [(s.name, dict(s.labels), s.value) for s in family.samples] == [
        ("h_bucket", {"le": "1.0"}, 0.0),
        ("h_bucket", {"le": "2.0"}, 1.0),
        ("h_bucket", {"le": "+Inf"}, 1.0),
        ("h_count", {}, 1.0),
        ("h_sum", {}, 1.5),
    ]


def test_histogram_counts_nan_in_the_inf_bucket_only(registry: Registry) -> None:
    histogram = Histogram("h", "H.", buckets=[1], registry=registry)
    histogram.observe(math.nan)
    histogram.observe(-math.inf)
    histogram.observe(math.inf)
    assert registry.get_sample_value("h_bucket", {"le": "1.0"}) == 1.0
    assert registry.get_sample_value("h_bucket", {"le": "+Inf"}) == 3.0
    assert registry.get_sample_value("h_count") == 3.0
    assert math.isnan(registry.get_sample_value("h_sum") or 0.0)


def test_histogram_default_buckets_end_with_inf(registry: Registry) -> None:
    assert DEFAULT_BUCKETS[-1] == math.inf
    Histogram("h", "H.", registry=registry).observe(0.3)
    les = [s.labels["le"] for s in next(registry.collect()).samples if s.name == "h_bucket"]
    assert les[0] == "0.005"
    assert les[-1] == "+Inf"
    assert len(les) == len(DEFAULT_BUCKETS)


@pytest.mark.parametrize(
    ("buckets", "les"),
    [
        ([1, 2], ["1.0", "2.0", "+Inf"]),
        ([1, math.inf], ["1.0", "+Inf"]),
        ([], ["+Inf"]),
        ([-1, 0, 2.5e6], ["-1.0", "0.0", "2.5e+06", "+Inf"]),
    ],
)
def test_histogram_inf_bucket_is_added_once(registry: Registry, buckets: list[float], les: list[str]) -> None:
    Histogram("h", "H.", buckets=buckets, registry=registry)
    family = next(registry.collect())
    assert [s.labels["le"] for s in family.samples if s.name == "h_bucket"] == les


@pytest.mark.parametrize("buckets", [[2, 1], [1, 1], [1, 2, 2, 3], [math.nan], [1, math.inf, 5]])
def test_histogram_refuses_unsorted_duplicate_or_nan_buckets(buckets: list[float]) -> None:
    with pytest.raises(InvalidBuckets, match="strictly increasing"):
        Histogram("h", "H.", buckets=buckets, registry=None)


# -- labelled families ------------------------------------------------------------------------------


def test_labels_by_position_and_by_name_reach_the_same_child(registry: Registry) -> None:
    family = Counter("requests", "Requests.", ["method", "code"], registry=registry)
    child = family.labels("get", "200")
    assert family.labels(method="get", code="200") is child
    assert family.labels(code="200", method="get") is child
    assert family.labels("get", 200) is child  # values go through str()
    child.inc()
    family.labels(method="get", code=200).inc()
    assert registry.get_sample_value("requests_total", {"method": "get", "code": "200"}) == 2.0


def test_unhashable_label_values_are_converted_with_str(registry: Registry) -> None:
    family = Gauge("g", "G.", ["v"], registry=registry)
    family.labels(["a", 1]).set(1)
    assert registry.get_sample_value("g", {"v": "['a', 1]"}) == 1.0


def test_labelled_family_exposes_nothing_before_first_child(registry: Registry) -> None:
    Counter("requests", "Requests.", ["code"], registry=registry)
    [family] = registry.collect()
    assert family.samples == []


@pytest.mark.parametrize(
    ("call", "given"),
    [
        (lambda f: f.labels("get"), r"1 value\(s\) \('get',\)"),
        (lambda f: f.labels("get", "200", "x"), r"3 value\(s\)"),
        (lambda f: f.labels(), r"0 value\(s\)"),
        (lambda f: f.labels(method="get"), r"label names \('method',\)"),
        (lambda f: f.labels(method="get", status="200"), r"label names \('method', 'status'\)"),
        (lambda f: f.labels(method="get", code="200", x="1"), "label names"),
        (lambda f: f.labels("get", code="200"), "either by position or by name"),
        (lambda f: f.remove("get"), r"1 value\(s\)"),
    ],
)
def test_labels_check_arity_and_names_on_every_call(
    registry: Registry, call: Callable[[Counter], object], given: str
) -> None:
    family = Counter("requests", "Requests.", ["method", "code"], registry=registry)
    family.labels("get", "200")  # a cached child must not let a later bad call through
    with pytest.raises(LabelValuesMismatch, match=given) as caught:
        call(family)
    message = str(caught.value)
    assert "'requests'" in message
    assert "('method', 'code')" in message
    assert caught.value.metric == "requests"
    assert caught.value.labelnames == ("method", "code")


def test_labels_on_a_family_without_label_names(registry: Registry) -> None:
    counter = Counter("jobs", "Jobs.", registry=registry)
    for call in (counter.labels, lambda: counter.labels("x"), lambda: counter.labels(x="1"), counter.remove):
        with pytest.raises(LabelValuesMismatch, match="'jobs' has no label names; update it directly"):
            call()


@pytest.mark.parametrize(
    ("metric_type", "update"),
    [
        (Counter, lambda m: m.inc()),
        (Gauge, lambda m: m.inc()),
        (Gauge, lambda m: m.dec()),
        (Gauge, lambda m: m.set(1)),
        (Gauge, lambda m: m.set_to_current_time()),
        (Histogram, lambda m: m.observe(1)),
    ],
)
def test_updating_a_labelled_family_itself_is_refused(
    registry: Registry, metric_type: type[Counter | Gauge | Histogram], update: Callable[[object], None]
) -> None:
    family = metric_type("m", "M.", ["handler"], registry=registry)
    with pytest.raises(
        LabelValuesRequired, match=r"'m' has label names \('handler',\).*m.labels\(handler=...\)"
    ):
        update(family)
    assert next(registry.collect()).samples == []


def test_remove_and_clear_children(registry: Registry) -> None:
    family = Gauge("g", "G.", ["a", "b"], registry=registry)
    family.labels("1", "x").set(1)
    family.labels("2", "x").set(2)
    family.labels("3", "x").set(3)
    family.remove(1, "x")
    family.remove(a="2", b="x")
    family.remove("never", "seen")  # removing an absent child is not an error
    assert [dict(s.labels) for s in next(registry.collect()).samples] == [{"a": "3", "b": "x"}]
    family.clear()
    assert next(registry.collect()).samples == []
    family.labels("1", "x").inc()  # a removed child starts again from zero
    assert registry.get_sample_value("g", {"a": "1", "b": "x"}) == 1.0


def test_const_labels_are_on_every_sample(registry: Registry) -> None:
    family = Histogram("h", "H.", ["handler"], buckets=[1], const_labels={"instance": 7}, registry=registry)
    family.labels("write").observe(0.5)
    labels = [dict(s.labels) for s in next(registry.collect()).samples]
    assert labels == [
        {"instance": "7", "handler": "write", "le": "1.0"},
        {"instance": "7", "handler": "write", "le": "+Inf"},
        {"instance": "7", "handler": "write"},
        {"instance": "7", "handler": "write"},
    ]


# -- definitions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "1abc", "has-dash", "has space", "ünï"])
def test_invalid_metric_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidMetricName, match="must match"):
        Counter(name, "Doc.", registry=None)


def test_colons_are_valid_in_metric_names(registry: Registry) -> None:
    Gauge("job:rate5m", "Recorded.", registry=registry).set(1)
    assert registry.get_sample_value("job:rate5m") == 1.0


@pytest.mark.parametrize(
    ("labelnames", "reason"),
    [
        (["ok", "1bad"], "must match"),
        (["has-dash"], "must match"),
        (["__reserved"], "reserved for Prometheus"),
        (["code", "code"], "given twice"),
    ],
)
def test_invalid_label_names_are_refused(labelnames: list[str], reason: str) -> None:
    with pytest.raises(InvalidLabelName, match=reason):
        Counter("c", "Doc.", labelnames, registry=None)


def test_le_is_reserved_for_histograms_only(registry: Registry) -> None:
    with pytest.raises(InvalidLabelName, match=r"'le'.*bucket bounds"):
        Histogram("h", "H.", ["le"], registry=None)
    with pytest.raises(InvalidLabelName, match="'le'"):
        Histogram("h", "H.", const_labels={"le": "1"}, registry=None)
    Gauge("g", "G.", ["le"], registry=registry).labels("1").set(1)


def test_const_label_clashing_with_a_label_name_is_refused() -> None:
    with pytest.raises(InvalidLabelName, match="given twice"):
        Counter("c", "Doc.", ["instance"], const_labels={"instance": "a"}, registry=None)


def test_label_names_given_as_one_string_are_refused() -> None:
    with pytest.raises(TypeError, match="sequence of names"):
        Counter("c", "Doc.", "version", registry=None)


def test_registry_none_registers_nowhere() -> None:
    counter = Counter("c", "Doc.", registry=None)
    counter.inc()
    assert [family.samples[0].value for family in counter.collect()] == [1.0]


# -- threads ----------------------------------------------------------------------------------------

THREADS = 8
ITERATIONS = 5_000


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Make the interpreter switch threads as often as it can, so that lost updates show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _run_in_threads(work: Callable[[int], None]) -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(index)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_updates_give_exact_totals(registry: Registry) -> None:
    counter = Counter("c", "C.", registry=registry)
    family = Counter("f", "F.", ["shard"], registry=registry)
    histogram = Histogram("h", "H.", buckets=[1, 2], registry=registry)
    gauge = Gauge("g", "G.", registry=registry)

    def work(index: int) -> None:
        for i in range(ITERATIONS):
            counter.inc()
            # Every thread creates and looks up the same children concurrently.
            family.labels(str(i % 3)).inc(2)
            histogram.observe(i % 3 + 0.5)  # 0.5, 1.5, 2.5 in turn
            gauge.inc()
            gauge.dec(0.5)

    _run_in_threads(work)

    total = THREADS * ITERATIONS
    assert registry.get_sample_value("c_total") == total
    per_shard = [registry.get_sample_value("f_total", {"shard": str(s)}) for s in range(3)]
    assert sum(v or 0.0 for v in per_shard) == 2 * total
    thirds = [THREADS * len(range(s, ITERATIONS, 3)) for s in range(3)]
    assert registry.get_sample_value("h_bucket", {"le": "1.0"}) == thirds[0]
    assert registry.get_sample_value("h_bucket", {"le": "2.0"}) == thirds[0] + thirds[1]
    assert registry.get_sample_value("h_bucket", {"le": "+Inf"}) == total
    assert registry.get_sample_value("h_count") == total
    assert registry.get_sample_value("h_sum") == 0.5 * thirds[0] + 1.5 * thirds[1] + 2.5 * thirds[2]
    assert registry.get_sample_value("g") == 0.5 * total


@pytest.mark.usefixtures("frequent_thread_switches")
def test_collecting_while_updating_sees_each_histogram_at_one_instant(registry: Registry) -> None:
    histogram = Histogram("h", "H.", ["shard"], buckets=[1], registry=registry)
    stop = threading.Event()
    inconsistent: list[dict[str, float]] = []

    def scrape() -> None:
        while not stop.is_set():
            for family in registry.collect():
                values = {s.name + s.labels.get("le", ""): s.value for s in family.samples}
                if values and not (
                    values["h_bucket1.0"]
                    == values["h_bucket+Inf"]
                    == values["h_count"]
                    == 2 * values["h_sum"]
                ):
                    inconsistent.append(values)

    def observe(index: int) -> None:
        child = histogram.labels("a")
        for _ in range(ITERATIONS):
            child.observe(0.5)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        _run_in_threads(observe)
    finally:
        stop.set()
        scraper.join(timeout=60)
    assert inconsistent == []
    assert registry.get_sample_value("h_count", {"shard": "a"}) == THREADS * ITERATIONS


# -- integer metrics --------------------------------------------------------------------------------


def test_int_counter_stays_exact_past_float_precision(registry: Registry) -> None:
    counter = IntCounter("sent_bytes", "Bytes sent.", registry=registry)
    float_counter = Counter("sent_float_bytes", "Bytes sent.", registry=registry)
    for metric in (counter, float_counter):
        metric.inc(2**53)
        metric.inc(3)
    [family] = counter.collect()
    assert family.samples[0].value == 2**53 + 3  # exact in the process
    assert isinstance(family.samples[0].value, int)
    [float_family] = float_counter.collect()
    assert float_family.samples[0].value == 2**53 + 4  # 2**53 + 3 is not a float64


@pytest.mark.parametrize("amount", [0.5, 1.0, "1", None])
def test_int_metrics_refuse_non_integers(registry: Registry, amount: object) -> None:
    counter = IntCounter("c", "C.", registry=registry)
    gauge = IntGauge("g", "G.", registry=registry)
    for update in (counter.inc, gauge.inc, gauge.dec, gauge.set):
        with pytest.raises(TypeError, match="integer metrics take integers"):
            update(amount)  # type: ignore[arg-type]
    assert registry.get_sample_value("c_total") == 0
    assert registry.get_sample_value("g") == 0


def test_int_metrics_accept_any_integer_type(registry: Registry) -> None:
    class Index:
        def __index__(self) -> int:
            return 3

    counter = IntCounter("c", "C.", registry=registry)
    gauge = IntGauge("g", "G.", ["q"], registry=registry)
    counter.inc(Index())  # type: ignore[arg-type]
    counter.inc(True)
    gauge.labels("a").inc(5)
    gauge.labels("a").dec(Index())  # type: ignore[arg-type]
    assert registry.get_sample_value("c_total") == 4
    assert registry.get_sample_value("g", {"q": "a"}) == 2
    gauge.labels("a").set(-9)
    assert registry.get_sample_value("g", {"q": "a"}) == -9
    with pytest.raises(ValueError, match="only go up"):
        counter.inc(-1)


@pytest.mark.parametrize("amount", [math.nan, -1, -0.5])
def test_counters_refuse_nan_and_negative_amounts(registry: Registry, amount: float) -> None:
    counter = Counter("c", "C.", registry=registry)
    with pytest.raises(ValueError, match="only go up"):
        counter.inc(amount)
    assert registry.get_sample_value("c_total") == 0.0


def test_counter_reset_and_unit_increments_mix(registry: Registry) -> None:
    counter = Counter("c", "C.", ["k"], registry=registry)
    child = counter.labels("a")
    child.inc()
    child.inc(1.0)  # also the lock-free path
    child.inc(2.5)
    for _ in range(3):  # reading does not change the value
        assert registry.get_sample_value("c_total", {"k": "a"}) == 4.5
    child.reset()
    assert registry.get_sample_value("c_total", {"k": "a"}) == 0.0
    child.inc()
    assert registry.get_sample_value("c_total", {"k": "a"}) == 1.0


def test_count_exceptions(registry: Registry) -> None:
    errors = Counter("errors", "Errors.", registry=registry)

    @errors.count_exceptions(KeyError)
    def lookup(key: str) -> int:
        return {"a": 1}[key]

    assert lookup("a") == 1
    for _ in range(2):
        with pytest.raises(KeyError):
            lookup("b")
    with pytest.raises(ZeroDivisionError), errors.count_exceptions(KeyError):
        _ = 1 / 0  # not counted: another type
    with pytest.raises(ValueError), errors.count_exceptions():
        raise ValueError
    assert registry.get_sample_value("errors_total") == 3.0


def test_gauge_set_function(registry: Registry) -> None:
    items: list[int] = [1, 2]
    gauge = Gauge("items", "Items.", ["queue"], registry=registry)
    gauge.labels("a").set_function(lambda: len(items))
    items.append(3)
    assert registry.get_sample_value("items", {"queue": "a"}) == 3
    gauge.labels("a").set_function(None)
    assert registry.get_sample_value("items", {"queue": "a"}) == 0
    with pytest.raises(LabelValuesRequired):
        gauge.set_function(lambda: 1.0)


@pytest.mark.parametrize(
    ("helper", "args", "expected"),
    [
        (linear_buckets, (0, 10, 3), (0.0, 10.0, 20.0)),
        (linear_buckets, (-1, 0.5, 5), (-1.0, -0.5, 0.0, 0.5, 1.0)),
        (linear_buckets, (0.1, 0.1, 3), (0.1, 0.2, 0.30000000000000004)),  # summed, as in Go
        (exponential_buckets, (1, 2, 4), (1.0, 2.0, 4.0, 8.0)),
        (exponential_buckets, (0.001, 10, 4), (0.001, 0.01, 0.1, 1.0)),
        (exponential_buckets, (100, 1.5, 3), (100.0, 150.0, 225.0)),
    ],
)
def test_bucket_helpers(
    helper: Callable[[float, float, int], tuple[float, ...]],
    args: tuple[float, float, int],
    expected: tuple[float, ...],
) -> None:
    assert helper(*args) == expected
    Histogram("h", "H.", buckets=helper(*args), registry=None)


@pytest.mark.parametrize(
    ("helper", "args", "message"),
    [
        (linear_buckets, (0, 10, 0), "count of at least 1"),
        (linear_buckets, (0, 0, 3), "positive width"),
        (exponential_buckets, (0, 2, 3), "positive start"),
        (exponential_buckets, (1, 1, 3), "factor greater than 1"),
        (exponential_buckets, (1, 2, 0), "count of at least 1"),
    ],
)
def test_bucket_helpers_refuse_bad_arguments(
    helper: Callable[[float, float, int], tuple[float, ...]], args: tuple[float, float, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        helper(*args)


@pytest.mark.parametrize(
    ("metric_type", "update"),
    [
        (IntCounter, lambda m: m.inc()),
        (IntCounter, lambda m: m.inc(5)),
        (IntGauge, lambda m: m.set(1)),
        (Counter, lambda m: m.count_exceptions()),
        (Counter, lambda m: m.local()),
        (Gauge, lambda m: m.time()),
        (Gauge, lambda m: m.track_inprogress()),
        (Histogram, lambda m: m.time()),
        (Histogram, lambda m: m.local()),
    ],
)
def test_helpers_of_a_labelled_family_itself_are_refused_at_once(
    registry: Registry, metric_type: type[Counter | Gauge | Histogram], update: Callable[[object], None]
) -> None:
    family = metric_type("m", "M.", ["handler"], registry=registry)
    with pytest.raises(LabelValuesRequired, match=r"m.labels\(handler=...\)"):
        update(family)


def test_repr_names_the_family() -> None:
    assert repr(Counter("c", "C.", ["a"], registry=None)) == "Counter('c', labelnames=('a',))"


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_updates_of_every_type_give_exact_totals(registry: Registry) -> None:
    counter = IntCounter("ic", "IC.", registry=registry)
    gauge = IntGauge("ig", "IG.", registry=registry)
    summary = Summary("s", "S.", ["k"], quantiles=[0.5], registry=registry)
    shared = Counter("via_locals", "Through locals.", registry=registry)
    histogram = Histogram("h", "H.", buckets=[1], registry=registry)
    states = StateSet("st", "St.", states=[f"s{i}" for i in range(THREADS)], registry=registry)

    def work(index: int) -> None:
        with shared.local(interval=0.001) as local, histogram.local(interval=0.001) as local_histogram:
            for i in range(ITERATIONS):
                counter.inc()
                counter.inc(2)
                gauge.inc(3)
                gauge.dec()
                summary.labels(str(i % 2)).observe(1.0)
                local.inc()
                local_histogram.observe(0.5 if i % 2 else 1.5)
        states.set(f"s{index}")

    _run_in_threads(work)
    total = THREADS * ITERATIONS
    assert registry.get_sample_value("ic_total") == 3 * total
    assert registry.get_sample_value("ig") == 2 * total
    counts = [registry.get_sample_value("s_count", {"k": k}) for k in "01"]
    assert counts == [total / 2, total / 2]
    assert registry.get_sample_value("via_locals_total") == total
    assert registry.get_sample_value("h_bucket", {"le": "1.0"}) == total / 2
    assert registry.get_sample_value("h_bucket", {"le": "+Inf"}) == total
    assert registry.get_sample_value("h_sum") == 0.5 * total / 2 + 1.5 * total / 2
    assert states.states() == {f"s{i}": True for i in range(THREADS)}
