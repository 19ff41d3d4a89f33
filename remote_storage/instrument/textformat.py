"""How numbers, help texts and label sets are written in the text formats.

The Prometheus text format 0.0.4 and OpenMetrics 1.0 write values and label
sets the same way; only help texts differ (OpenMetrics also escapes double
quotes). Both encoders and the label sets that cache their rendering
(:class:`~remote_storage.instrument.samples.LabelSet`) use these functions,
so there is one definition of each rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "escape_help",
    "escape_help_openmetrics",
    "escape_label_value",
    "format_float",
    "render_labels",
]


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


def escape_help(text: str) -> str:
    """A ``# HELP`` text in format 0.0.4: backslash and newline escaped."""
    return text.replace("\\", r"\\").replace("\n", r"\n")


def escape_help_openmetrics(text: str) -> str:
    """A ``# HELP`` text in OpenMetrics: backslash, newline and double quote escaped."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def escape_label_value(text: str) -> str:
    """A label value between double quotes, in either format."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_labels(labels: Mapping[str, str]) -> str:
    """``{a="1",b="2"}``, sorted by name as the Go and Python clients write them; ``""`` if empty."""
    if not labels:
        return ""
    pairs = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in sorted(labels.items()))
    return "{" + pairs + "}"
