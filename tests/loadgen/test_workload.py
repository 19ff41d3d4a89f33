"""The workload: label sets, timestamps, values, churn, and bodies that decode to what it models."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from remote_storage.loadgen.catalog import LABEL_NAMES, Metric
from remote_storage.loadgen.encoding import Protocol
from remote_storage.loadgen.values import RealisticValues, SeriesRef, ValueMode
from remote_storage.loadgen.workload import Workload, WorkloadError, WorkloadSpec
from remote_storage.protocol import snappy
from remote_storage.protocol.write import decode_v1, decode_v2, encode_v1, encode_v2
from remote_storage.storage import Labels, MetricType, TimeSeries

START_MS = 1_700_000_000_000


def spec(**overrides: object) -> WorkloadSpec:
    settings: dict[str, object] = {"series": 1_000, "series_per_request": 300, "start_ms": START_MS}
    settings.update(overrides)
    return WorkloadSpec(**settings)  # type: ignore[arg-type]


def decoded(workload: Workload, index: int) -> list[TimeSeries]:
    """The series of request ``index`` as the service's decoders read its body."""
    batch = workload.batch(index)
    payload = snappy.decompress(batch.body, 1 << 30)
    assert len(payload) == batch.raw_bytes
    decode = decode_v2 if workload.spec.protocol is Protocol.V2 else decode_v1
    return decode(payload).series


def round_series(workload: Workload, round_number: int) -> list[TimeSeries]:
    first = round_number * workload.requests_per_round
    return [
        s for index in range(first, first + workload.requests_per_round) for s in decoded(workload, index)
    ]


def by_labels(workload: Workload, rounds: int) -> dict[Labels, list[TimeSeries]]:
    found: dict[Labels, list[TimeSeries]] = defaultdict(list)
    for round_number in range(rounds):
        for series in round_series(workload, round_number):
            found[series.labels].append(series)
    return found


def test_requests_split_the_series_into_rounds() -> None:
    workload = Workload(spec())
    assert workload.requests_per_round == 4
    assert [workload.batch(i).samples for i in range(5)] == [300, 300, 300, 100, 300]
    assert [(workload.batch(i).round, workload.batch(i).template) for i in (3, 4)] == [(0, 3), (1, 0)]


@pytest.mark.parametrize("labels", [3, 10, 20])
def test_every_series_once_per_round_with_sorted_unique_labels(labels: int) -> None:
    workload = Workload(spec(labels=labels))
    series = round_series(workload, 0)
    assert len(series) == 1_000
    assert len({s.labels for s in series}) == 1_000
    for s in series:
        names = [name for name, _ in s.labels]
        assert len(names) == labels
        assert names == sorted(set(names)), s.labels
        assert all(value for _, value in s.labels), s.labels
    first = series[0].labels.as_dict()
    assert set(first) == set(LABEL_NAMES[:labels]) | {f"label_{n}" for n in range(len(LABEL_NAMES), labels)}


def test_label_values_have_realistic_cardinalities() -> None:
    series = round_series(Workload(WorkloadSpec(series=20_000, start_ms=START_MS)), 0)
    values: dict[str, set[str]] = defaultdict(set)
    for s in series:
        for name, value in s.labels:
            values[name].add(value)
    cardinality = {name: len(found) for name, found in values.items()}
    assert 100 <= cardinality["__name__"] <= 1_000
    assert cardinality["instance"] == cardinality["pod"] == 200  # one target per 100 series
    assert 5 <= cardinality["job"] <= 20
    assert 3 <= cardinality["namespace"] <= 30
    assert (cardinality["region"], cardinality["cluster"], cardinality["zone"]) == (3, 6, 9)


@pytest.mark.parametrize("samples_per_series", [1, 3])
def test_timestamps_increase_per_series_scrape_by_scrape(samples_per_series: int) -> None:
    workload = Workload(spec(samples_per_series=samples_per_series))
    for labels, entries in by_labels(workload, 3).items():
        assert len(entries) == 3, labels
        timestamps = [t for entry in entries for t in entry.timestamps]
        assert len(timestamps) == 3 * samples_per_series
        steps = {b - a for a, b in itertools.pairwise(timestamps)}
        assert steps == {15_000}, labels  # one scrape interval, so never repeated


def test_series_of_one_target_share_timestamps_and_targets_are_spread() -> None:
    series = round_series(Workload(spec()), 0)
    by_target: dict[str, set[int]] = defaultdict(set)
    for s in series:
        by_target[s.labels.get("instance")].update(s.timestamps)
    assert all(len(stamps) == 1 for stamps in by_target.values())
    offsets = {stamp - START_MS for stamps in by_target.values() for stamp in stamps}
    assert len(offsets) > 1 and all(0 <= offset < 15_000 for offset in offsets)


def test_realistic_counters_never_decrease_and_gauges_wander_or_hold() -> None:
    workload = Workload(spec(samples_per_series=2))
    model = RealisticValues(workload.spec.seed, 300)
    counters = moving_counters = wandering = moved = holding = 0
    for labels, entries in by_labels(workload, 6).items():
        values = [v for entry in entries for v in entry.values]
        index = next(i for i in range(1_000) if Labels(workload.catalog.labels(i, 0)) == labels)
        ref = SeriesRef(index, 0, workload.catalog.metric(index))
        if ref.metric.type is MetricType.COUNTER:
            counters += 1
            assert all(a <= b for a, b in itertools.pairwise(values)), labels
            moving_counters += values[-1] > values[0]
        elif model.is_constant(ref):
            holding += 1
            assert len(set(values)) == 1, labels
        else:
            wandering += 1
            moved += len(set(values)) > 1  # whole numbers near a small level may stay a while
            assert min(values) > 0, labels
            assert max(values) / min(values) < 2, labels  # wanders around a level
        m = model.parameters(ref)[3]
        assert all(round(v * m) / m == v for v in values), labels  # at the family's resolution
    assert counters > 100 and moving_counters > 0.8 * counters
    assert wandering > 100 and moved > 0.7 * wandering and holding > 50


def test_realistic_values_are_whole_numbers_pages_or_hundredths_as_exporters_give_them() -> None:
    model = RealisticValues(1, 10)
    ref = SeriesRef(7, 0, Metric("node_memory_Active_bytes", MetricType.GAUGE, ""))
    assert model.parameters(ref)[3] == 1 / 4096
    assert all(model.value(0, 0, ref, n) % 4096 == 0 for n in range(50))
    ref = SeriesRef(7, 0, Metric("node_cpu_seconds_total", MetricType.COUNTER, ""))
    texts = [repr(model.value(0, 0, ref, n)) for n in range(50)]
    assert all(len(text.partition(".")[2]) <= 2 for text in texts), texts  # prints as hundredths
    ref = SeriesRef(7, 0, Metric("kube_pod_info", MetricType.GAUGE, ""))
    assert model.is_constant(ref) and len({model.value(0, 0, ref, n) for n in range(50)}) == 1


def test_random_values_change_every_scrape() -> None:
    workload = Workload(spec(values=ValueMode.RANDOM))
    for labels, entries in by_labels(workload, 3).items():
        values = [v for entry in entries for v in entry.values]
        assert len(set(values)) == 3, labels
        assert all(0 <= v < 1000 for v in values)


@pytest.mark.parametrize("protocol", list(Protocol))
@pytest.mark.parametrize("values", list(ValueMode))
@pytest.mark.parametrize("samples_per_series", [1, 2])
def test_bodies_decode_to_the_modelled_series(
    protocol: Protocol, values: ValueMode, samples_per_series: int
) -> None:
    workload = Workload(spec(protocol=protocol, values=values, samples_per_series=samples_per_series))
    for index in (0, 3, 5, 10):
        expected = workload.expected(index)
        got = decoded(workload, index)
        assert [s.labels for s in got] == [s.labels for s in expected]
        for a, b in zip(got, expected, strict=True):
            assert list(a.timestamps) == list(b.timestamps)
            assert list(a.values) == list(b.values)


@pytest.mark.parametrize("protocol", list(Protocol))
def test_bodies_are_what_the_protobuf_encoders_write(protocol: Protocol) -> None:
    workload = Workload(spec(protocol=protocol, samples_per_series=2))
    for index in (0, 3):
        payload = snappy.decompress(workload.batch(index).body, 1 << 30)
        expected = workload.expected(index)
        if protocol is Protocol.V2:
            assert payload == encode_v2(expected, workload.metadata(index))
        else:
            assert payload == encode_v1(expected)


def test_v2_bodies_carry_type_and_help_of_each_family() -> None:
    workload = Workload(spec(protocol=Protocol.V2))
    payload = snappy.decompress(workload.batch(0).body, 1 << 30)
    metadata = {m.family: m for m in decode_v2(payload).metadata}
    assert metadata["node_load1"].type is MetricType.GAUGE
    assert metadata["node_cpu_seconds_total"].type is MetricType.COUNTER
    assert metadata["node_cpu_seconds_total"].help


def test_churn_replaces_the_stated_number_of_series_per_minute() -> None:
    workload = Workload(spec(churn=120))  # 30 per 15 s round
    rounds = [{s.labels for s in round_series(workload, r)} for r in range(6)]
    assert all(len(labels) == 1_000 for labels in rounds)
    assert len(rounds[0] - rounds[1]) == 30
    assert len(rounds[0] - rounds[4]) == 120  # one minute of samples
    seen_before = set().union(*rounds[:5])
    assert len(rounds[5] - seen_before) == 30  # replacements are new series


def test_churn_wraps_around_and_counts_per_minute_of_sample_time() -> None:
    workload = Workload(spec(series=100, series_per_request=40, churn=150, samples_per_series=2))
    # Two scrapes per round: 75 replacements per round, wrapping past the 100th series.
    assert [workload.replaced(r) for r in range(4)] == [0, 75, 150, 225]
    assert [workload.generation(s, 2) for s in (0, 49, 50, 99)] == [2, 2, 1, 1]
    before, after = ({s.labels for s in round_series(workload, r)} for r in (1, 2))
    assert len(before - after) == 75


def test_seeds_give_different_series() -> None:
    one, two = (round_series(Workload(spec(seed=seed)), 0) for seed in (1, 2))
    assert not {s.labels for s in one} & {s.labels for s in two}


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"series": 0}, "--series"),
        ({"labels": 2}, "--labels"),
        ({"series_per_request": 0}, "--series-per-request"),
        ({"samples_per_series": 0}, "--samples-per-series"),
        ({"churn": -1.0}, "--churn"),
        ({"interval_ms": 0}, "--interval"),
        ({"start_ms": 0}, "start time"),
    ],
)
def test_bad_settings_name_the_option(overrides: dict[str, object], flag: str) -> None:
    with pytest.raises(WorkloadError, match=flag):
        spec(**overrides)
