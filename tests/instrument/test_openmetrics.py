"""OpenMetrics 1.0 text, checked with prometheus_client's OpenMetrics parser as an oracle."""

from __future__ import annotations

import math
import time

import prometheus_client
import pytest
from prometheus_client.openmetrics.exposition import generate_latest as oracle_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from remote_storage import instrument
from remote_storage.instrument import (
    Counter,
    Gauge,
    Histogram,
    MetricFamily,
    Registry,
    Sample,
    Summary,
    family,
    generate_openmetrics,
)
from tests.instrument.zoo import AWKWARD, define, every_type

Parsed = dict[str, tuple[str, str, str, list[tuple[str, dict[str, str], str]]]]


def parsed(text: str) -> Parsed:
    """Families by name: type, help, unit and samples (values as text, so NaN equals NaN)."""
    return {
        family.name: (
            family.type,
            family.documentation,
            family.unit,
            [(s.name, s.labels, repr(s.value)) for s in family.samples],
        )
        for family in text_string_to_metric_families(text)
    }


def without_created_values(families: Parsed) -> Parsed:
    """``_created`` samples kept (their presence matters), their times blanked (they differ)."""
    return {
        name: (
            kind,
            help_text,
            unit,
            [(n, labels, "t" if n.endswith("_created") else v) for n, labels, v in samples],
        )
        for name, (kind, help_text, unit, samples) in families.items()
    }


def test_parsed_output_matches_prometheus_client() -> None:
    ours, theirs = Registry(), prometheus_client.CollectorRegistry()
    define(instrument, ours)
    define(prometheus_client, theirs)
    assert without_created_values(parsed(generate_openmetrics(ours).decode())) == without_created_values(
        parsed(oracle_openmetrics(theirs).decode())
    )


def test_every_metric_type_parses() -> None:
    registry = Registry()
    every_type(registry)
    text = generate_openmetrics(registry).decode()
    families = parsed(text)
    assert text.endswith("\n# EOF\n")
    assert families["rs_feature"][0] == "stateset"
    assert families["rs_build"][0] == "info"
    assert families["rs_request_size_bytes"][0] == "summary"
    assert families["rs_sent_bytes"][3][0][2] == repr(float(2**60))
    values = {s[1]["value"]: float(s[2]) for s in families["rs_requests"][3] if s[0] == "rs_requests_total"}
    assert values == {value: index + 0.5 for index, value in enumerate(AWKWARD)}
    assert families["rs_requests"][1] == 'Help with a \\ backslash,\na newline and "quotes".'


def test_units_types_and_created() -> None:
    registry = Registry()
    before = time.time()
    counter = Counter("read", "Bytes read.", ["disk"], unit="bytes", registry=registry)
    counter.labels("sda").inc(512)
    Gauge("temperature", "T.", unit="celsius", registry=registry).set(21.5)
    Histogram("latency", "L.", unit="seconds", buckets=[1], registry=registry).observe(0.5)
    after = time.time()
    text = generate_openmetrics(registry).decode()
    assert "# UNIT read_bytes bytes\n" in text
    assert "# UNIT temperature_celsius celsius\n" in text
    assert "# TYPE read_bytes counter\n" in text  # the family, without _total
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["read_bytes"].unit == "bytes"
    [total, created] = families["read_bytes"].samples
    assert (total.name, total.labels, total.value) == ("read_bytes_total", {"disk": "sda"}, 512.0)
    assert (created.name, created.labels) == ("read_bytes_created", {"disk": "sda"})
    assert before <= created.value <= after
    histogram = [(s.name, s.labels.get("le")) for s in families["latency_seconds"].samples]
    assert histogram == [
        ("latency_seconds_bucket", "1.0"),
        ("latency_seconds_bucket", "+Inf"),
        ("latency_seconds_count", None),
        ("latency_seconds_sum", None),
        ("latency_seconds_created", None),
    ]


def test_reset_moves_created(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_700_000_000.0]
    monkeypatch.setattr(family, "wall_clock", lambda: now[0])
    registry = Registry()
    counter = Counter("jobs", "J.", registry=registry)
    counter.inc(5)
    first = registry.collect().__next__().samples[0].created
    now[0] += 10.0
    counter.reset()
    [sample] = next(registry.collect()).samples
    assert sample.value == 0.0
    assert first == 1_700_000_000.0
    assert sample.created is not None and sample.created > first
    assert sample.created == 1_700_000_010.0


def test_exact_layout() -> None:
    registry = Registry()
    Counter("jobs", 'Jobs "done"\\\n.', ["kind"], registry=registry).labels('a"b').inc()
    instrument.Info("build", "Build.", registry=registry).info({"version": "1"})
    text = generate_openmetrics(registry).decode()
    lines = text.splitlines()
    assert lines[:3] == [
        '# HELP jobs Jobs \\"done\\"\\\\\\n.',
        "# TYPE jobs counter",
        'jobs_total{kind="a\\"b"} 1.0',
    ]
    assert lines[3].startswith('jobs_created{kind="a\\"b"} 1.')
    assert lines[4:] == [
        "# HELP build Build.",
        "# TYPE build info",
        'build_info{version="1"} 1.0',
        "# EOF",
    ]


def test_sums_openmetrics_forbids_are_left_out() -> None:
    registry = Registry()
    negative_bounds = Histogram("temperature", "T.", ["room"], buckets=[-10, 0, 10], registry=registry)
    negative_bounds.labels("cellar").observe(5)
    negative_observations = Histogram("offset", "O.", buckets=[1], registry=registry)
    negative_observations.observe(-3)
    nan = Summary("ratio", "R.", ["kind"], registry=registry)
    nan.labels("bad").observe(math.nan)
    nan.labels("good").observe(0.5)
    fine = Histogram("fine", "F.", buckets=[1], registry=registry)
    fine.observe(0.5)
    families = {f.name: f for f in text_string_to_metric_families(generate_openmetrics(registry).decode())}
    assert [s.name for s in families["temperature"].samples][-2:] == [
        "temperature_bucket",
        "temperature_created",
    ]
    assert "offset_sum" not in [s.name for s in families["offset"].samples]
    assert "offset_count" not in [s.name for s in families["offset"].samples]
    ratio = [(s.name, s.labels["kind"]) for s in families["ratio"].samples]
    assert ratio == [
        ("ratio_count", "bad"),
        ("ratio_created", "bad"),
        ("ratio_count", "good"),
        ("ratio_sum", "good"),
        ("ratio_created", "good"),
    ]
    assert [s.name for s in families["fine"].samples][-3:] == ["fine_count", "fine_sum", "fine_created"]
    # The text format 0.0.4 has no such rule and keeps them.
    assert b"offset_sum -3.0" in instrument.generate_latest(registry)


def test_custom_collector_samples_and_units() -> None:
    class Custom:
        def collect(self) -> list[MetricFamily]:
            return [
                MetricFamily("temp", "gauge", "Unit not in the name.", "celsius", [Sample("temp", {}, 1)]),
                MetricFamily("mystery", "unknown", "?", samples=[Sample("mystery", {"a": "b"}, 7)]),
            ]

    registry = Registry()
    registry.register(Custom())
    text = generate_openmetrics(registry).decode()
    assert "# UNIT" not in text  # OpenMetrics requires the name to end with the unit
    assert "# TYPE mystery unknown\n" in text
    parsed(text)
