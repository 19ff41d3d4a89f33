"""Rendering collected metrics as text, and choosing the format for a scrape.

Only the Prometheus text format 0.0.4 exists today. :func:`choose_encoder` is
where content negotiation goes once OpenMetrics is added; callers already go
through it::

    >>> from remote_storage.instrument import Counter, Registry, choose_encoder
    >>> registry = Registry()
    >>> Counter("jobs", "Jobs done.", registry=registry).inc()
    >>> encoder, content_type = choose_encoder("text/plain")
    >>> print(encoder(registry).decode(), end="")
    # HELP jobs_total Jobs done.
    # TYPE jobs_total counter
    jobs_total 1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from remote_storage.instrument.registry import REGISTRY, Collector

__all__ = [
    "CONTENT_TYPE_LATEST",
    "Encoder",
    "choose_encoder",
    "format_float",
    "generate_latest",
]

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of :func:`generate_latest`'s output."""

Encoder = Callable[[Collector], bytes]
"""Renders everything a collector (usually a Registry) yields as one response body."""

# The 0.0.4 format knows fewer types than OpenMetrics; these are the closest it can say.
_TYPE_NAMES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "gaugehistogram": "histogram",
    "summary": "summary",
    "info": "gauge",
    "stateset": "gauge",
    "unknown": "untyped",
}
# 0.0.4 names a counter family after its sample, OpenMetrics after the family.
_FAMILY_SUFFIXES = {"counter": "_total", "info": "_info"}


def format_float(value: float) -> str:
    """Write ``value`` as the Prometheus Go client does: ``+Inf``, ``-Inf``, ``NaN``,
    ``1.0``, ``1e+06``.

    Histogram ``le`` labels go through this too, so that a bucket's label
    value is the same string other clients write.
    """
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value != value:
        return "NaN"
    text = repr(float(value))
    dot = text.find(".")
    # Go switches to exponent notation from 1e+06 on, Python only from 1e+16.
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_label_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _format_labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    # Sorted by name, as the Go and Python clients write them.
    pairs = ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in sorted(labels.items()))
    return "{" + pairs + "}"


def generate_latest(registry: Collector = REGISTRY) -> bytes:
    """Render every family ``registry`` collects in the Prometheus text format 0.0.4."""
    lines: list[str] = []
    for family in registry.collect():
        name = family.name + _FAMILY_SUFFIXES.get(family.type, "")
        lines.append(f"# HELP {name} {_escape_help(family.help)}\n")
        lines.append(f"# TYPE {name} {_TYPE_NAMES[family.type]}\n")
        for sample in family.samples:
            lines.append(f"{sample.name}{_format_labels(sample.labels)} {format_float(sample.value)}\n")
    return "".join(lines).encode("utf-8")


def choose_encoder(accept_header: str) -> tuple[Encoder, str]:
    """Pick the exposition format for a scrape from its ``Accept`` header.

    Returns the encoder and the ``Content-Type`` to send with its output.
    Today every client gets the text format 0.0.4, which all Prometheus
    versions accept.
    """
    return generate_latest, CONTENT_TYPE_LATEST
