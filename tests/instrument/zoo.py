"""Registries holding every metric type, with awkward label values, shared by the format tests."""

from __future__ import annotations

import math
from types import ModuleType

from remote_storage import instrument

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
    "# not a comment",
    "tab\there",
]


def define(library: ModuleType, registry: object) -> None:
    """The same metrics and updates, written against either library (this one or prometheus_client)."""
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
    sizes = library.Summary("rs_sizes_bytes", "Sizes.", ["kind"], registry=registry)
    for kind, size in [("a", 512), ("a", 1024), ('q"\\\n', 3)]:
        sizes.labels(kind).observe(size)
    library.Info("rs_build", "Build.", registry=registry).info({"version": "1.2", "odd": 'q"uo\\te\n'})
    phase = library.Enum("rs_phase", "Phase.", ["job"], states=["starting", "running"], registry=registry)
    phase.labels("backup").state("running")
    phase.labels('j"\\\n').state("starting")


def every_type(registry: instrument.Registry) -> None:
    """``define`` plus what only this library has: integer metrics, quantiles, state sets, process."""
    define(instrument, registry)
    instrument.IntCounter("rs_sent_bytes", "Bytes sent.", ["peer"], registry=registry).labels(AWKWARD[6]).inc(
        2**60
    )
    instrument.IntGauge("rs_queue_items", "Items queued.", ["queue"], registry=registry).labels(
        AWKWARD[3]
    ).set(-7)
    quantiles = instrument.Summary(
        "rs_request_size_bytes", "Request sizes.", ["route"], quantiles=[0.5, 0.9, 0.99], registry=registry
    )
    for size in range(1, 2001):
        quantiles.labels(AWKWARD[1]).observe(size)
    quantiles.labels("idle")  # a window without observations: NaN quantiles
    features = instrument.StateSet(
        "rs_feature", "Features.", ["server"], states=["tls", "gzip", 'odd "state"'], registry=registry
    )
    features.labels(AWKWARD[2]).set_states({"tls": True, 'odd "state"': True})
    instrument.Histogram(
        "rs_temperature_celsius",
        "Temperatures, some below zero.",
        buckets=instrument.linear_buckets(-10, 10, 4),
        registry=registry,
    ).observe(-3)
    instrument.ProcessCollector(registry=registry)
