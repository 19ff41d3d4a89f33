"""The text format 0.0.4, checked against prometheus_client as an oracle."""

from __future__ import annotations

import math
from collections.abc import Iterator

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from remote_storage import instrument
from remote_storage.instrument import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    MetricFamily,
    Registry,
    Sample,
    choose_encoder,
    generate_latest,
)
from remote_storage.instrument.exposition import format_float
from remote_storage.instrument.openmetrics import CONTENT_TYPE_OPENMETRICS, generate_openmetrics
from tests.instrument.zoo import AWKWARD, define, every_type


@pytest.fixture
def without_created_series() -> Iterator[None]:
    """prometheus_client also writes ``_created`` series, which 0.0.4 output here leaves out."""
    prometheus_client.disable_created_metrics()
    try:
        yield
    finally:
        prometheus_client.enable_created_metrics()


def ours() -> str:
    registry = Registry()
    define(instrument, registry)
    return generate_latest(registry).decode("utf-8")


def oracle() -> str:
    registry = prometheus_client.CollectorRegistry()
    define(prometheus_client, registry)
    return prometheus_client.generate_latest(registry).decode("utf-8")


def parsed(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], str]]]]:
    """Families as prometheus_client's parser reads them; values as text so NaN compares equal."""
    return [
        (
            family.name,
            family.type,
            family.documentation,
            [(s.name, s.labels, repr(s.value)) for s in family.samples if not s.name.endswith("_created")],
        )
        for family in text_string_to_metric_families(text)
        if not family.name.endswith("_created")
    ]


def test_parsed_output_matches_prometheus_client() -> None:
    assert parsed(ours()) == parsed(oracle())


def test_awkward_label_values_survive_the_round_trip() -> None:
    families = {family.name: family for family in text_string_to_metric_families(ours())}
    values = {s.labels["value"]: s.value for s in families["rs_requests"].samples}
    assert values == {value: index + 0.5 for index, value in enumerate(AWKWARD)}
    assert families["rs_requests"].documentation == 'Help with a \\ backslash,\na newline and "quotes".'


@pytest.mark.usefixtures("without_created_series")
def test_output_is_byte_identical_to_prometheus_client() -> None:
    assert ours() == oracle()


def test_every_metric_type_parses_back_to_the_collected_values() -> None:
    registry = Registry()
    every_type(registry)
    collected = {
        (s.name, tuple(sorted(s.labels.items()))): repr(float(s.value))
        for family in registry.collect()
        for s in family.samples
    }
    text = generate_latest(registry).decode()
    parsed_back = {
        (s.name, tuple(sorted(s.labels.items()))): repr(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # Collected again for the text: process metrics and counters read now differ; compare the rest.
    volatile = ("process_",)
    assert {k: v for k, v in parsed_back.items() if not k[0].startswith(volatile)} == {
        k: v for k, v in collected.items() if not k[0].startswith(volatile)
    }
    assert "_created" not in text


def test_label_sets_render_like_plain_mappings() -> None:
    class Plain:
        def collect(self) -> list[MetricFamily]:
            return [
                MetricFamily(
                    "plain",
                    "gauge",
                    "Plain dict labels.",
                    samples=[Sample("plain", {"z": v, "a": v}, i) for i, v in enumerate(AWKWARD)],
                )
            ]

    ours, theirs = Registry(), Registry()
    family = Gauge("plain", "Plain dict labels.", ["z", "a"], registry=ours)
    for i, value in enumerate(AWKWARD):
        family.labels(value, value).set(i)
    theirs.register(Plain())
    assert generate_latest(ours) == generate_latest(theirs)


def test_text_layout() -> None:
    registry = Registry()
    Counter("jobs", "Jobs\\done\nnow.", ["kind"], registry=registry).labels('a"b\\c\nd').inc()
    Histogram("h", "H.", buckets=[1], registry=registry).observe(2)
    Gauge("g", "G.", registry=registry)
    assert generate_latest(registry) == (
        b"# HELP jobs_total Jobs\\\\done\\nnow.\n"
        b"# TYPE jobs_total counter\n"
        b'jobs_total{kind="a\\"b\\\\c\\nd"} 1.0\n'
        b"# HELP h H.\n"
        b"# TYPE h histogram\n"
        b'h_bucket{le="1.0"} 0.0\n'
        b'h_bucket{le="+Inf"} 1.0\n'
        b"h_count 1.0\n"
        b"h_sum 2.0\n"
        b"# HELP g G.\n"
        b"# TYPE g gauge\n"
        b"g 0.0\n"
    )


def test_empty_registry_renders_nothing() -> None:
    assert generate_latest(Registry()) == b""


def test_custom_collector_types_map_to_what_0_0_4_can_say() -> None:
    class Custom:
        def collect(self) -> list[MetricFamily]:
            return [
                MetricFamily("built", "info", "Build.", samples=[Sample("built_info", {"version": "1"}, 1)]),
                MetricFamily("mystery", "unknown", "?", samples=[Sample("mystery", {}, 7)]),
            ]

    registry = Registry()
    registry.register(Custom())
    assert generate_latest(registry).decode() == (
        "# HELP built_info Build.\n"
        "# TYPE built_info gauge\n"
        'built_info{version="1"} 1.0\n'
        "# HELP mystery ?\n"
        "# TYPE mystery untyped\n"
        "mystery 7.0\n"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (1.0, "1.0"),
        (1, "1.0"),
        (0.0, "0.0"),
        (-0.5, "-0.5"),
        (0.005, "0.005"),
        (2.5e6, "2.5e+06"),
        (123456.0, "123456.0"),
        (1234567.0, "1.234567e+06"),
        (1e20, "1e+20"),
        (-1e7, "-10000000.0"),
        (1e-7, "1e-07"),
    ],
)
def test_format_float_matches_the_go_client(value: float, text: str) -> None:
    assert format_float(value) == text
    assert format_float(value) == prometheus_client.utils.floatToGoString(value)


PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        ("", False),
        ("text/plain", False),
        ("text/plain; version=0.0.4", False),
        ("*/*", False),
        ("text/*;q=0.3", False),
        ("application/json", False),  # nothing acceptable: the format every scraper reads
        (PROMETHEUS_2_ACCEPT, True),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8,text/plain;version=0.0.4;q=0.5", True),
        ("application/openmetrics-text;version=0.0.1", True),
        ("APPLICATION/OpenMetrics-Text", True),
        ('application/openmetrics-text; version="1.0.0"', True),
        ("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", False),
        ("text/plain;q=0.5, application/openmetrics-text;q=0.6", True),
        ("application/openmetrics-text;version=2.0.0,text/plain;q=0.1", False),  # a version we lack
        ("application/openmetrics-text;q=0", False),  # q=0: not acceptable
        ("application/openmetrics-text;q=high", False),
        ("text/plain;version=0.0.5,application/openmetrics-text;q=0.2", True),
        ("text/plain, application/openmetrics-text", False),  # a tie: the first listed
    ],
)
def test_choose_encoder_follows_the_accept_header(accept: str, openmetrics: bool) -> None:
    encoder, content_type = choose_encoder(accept)
    if openmetrics:
        assert encoder is generate_openmetrics
        assert content_type == CONTENT_TYPE_OPENMETRICS
        assert content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    else:
        assert encoder is generate_latest
        assert content_type == CONTENT_TYPE_LATEST == "text/plain; version=0.0.4; charset=utf-8"
