"""The text format 0.0.4, checked against prometheus_client as an oracle."""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import ModuleType

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

AWKWARD = [
    "plain",
    'double "quotes"',
    "back\\slash",
    "new\nline",
    "\\n is not a newline",
    "ends with a backslash\\",
    'all of \\ " \n together',
    "ünïcødé ✓ 日本語 🙂",
    "",
    "{braces},=commas",
]


def define(library: ModuleType, registry: object) -> None:
    """The same metrics and updates, written against either library."""
    requests = library.Counter(
        "rs_requests_total",
        'Help with a \\ backslash,\na newline and "quotes".',
        ["value", "index"],
        registry=registry,
    )
    for index, value in enumerate(AWKWARD):
        requests.labels(value, index).inc(index + 0.5)
    library.Counter("rs_plain", "No labels.", registry=registry).inc(3)
    gauge = library.Gauge(
        "g", "Gauge.", ["x"], namespace="ns", subsystem="sub", unit="bytes", registry=registry
    )
    gauge.labels("big").set(1e20)
    gauge.labels("small").set(-1.5e-7)
    gauge.labels("nan").set(math.nan)
    gauge.labels("inf").set(-math.inf)
    gauge.labels("int").set(42)
    latency = library.Histogram(
        "rs_latency_seconds",
        "Latency.",
        ["handler"],
        buckets=[0.001, 0.5, 1, 2.5, 1e6, 12345678],
        registry=registry,
    )
    for observation in [0.0005, 0.001, 0.7, 1, 3, 1e7, 1e9]:
        latency.labels(handler="write").observe(observation)
    latency.labels(handler='r"e\\a\nd').observe(0.2)
    library.Histogram("rs_default_buckets", "Default buckets.", registry=registry).observe(0.1)


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


@pytest.mark.parametrize(
    "accept",
    [
        "",
        "text/plain",
        "*/*",
        "application/openmetrics-text; version=1.0.0; charset=utf-8,text/plain;version=0.0.4;q=0.5",
    ],
)
def test_choose_encoder_serves_text_0_0_4_today(accept: str) -> None:
    encoder, content_type = choose_encoder(accept)
    assert encoder is generate_latest
    assert content_type == CONTENT_TYPE_LATEST == "text/plain; version=0.0.4; charset=utf-8"
