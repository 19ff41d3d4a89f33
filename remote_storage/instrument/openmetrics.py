"""Rendering collected metrics in the OpenMetrics 1.0 text format.

Compared with the text format 0.0.4, OpenMetrics names a counter family
without its ``_total`` suffix, has ``# UNIT`` lines, the ``info`` and
``stateset`` types, a ``<family>_created`` series giving when each counter,
histogram and summary child started, and ends with ``# EOF``::

    >>> from remote_storage.instrument import Counter, Registry, generate_openmetrics
    >>> registry = Registry()
    >>> Counter("read", "Bytes read.", unit="bytes", registry=registry).inc(512)
    >>> print(generate_openmetrics(registry).decode(), end="")  # doctest: +ELLIPSIS
    # HELP read_bytes Bytes read.
    # TYPE read_bytes counter
    # UNIT read_bytes bytes
    read_bytes_total 512.0
    read_bytes_created 1...
    # EOF
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from remote_storage.instrument.registry import REGISTRY, Collector
from remote_storage.instrument.samples import LabelSet, MetricFamily, Sample
from remote_storage.instrument.textformat import escape_help_openmetrics, format_float, render_labels

__all__ = ["CONTENT_TYPE_OPENMETRICS", "generate_openmetrics"]

CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""Content type of :func:`generate_openmetrics`'s output."""

# OpenMetrics allows no unit on these types.
_UNITLESS = frozenset({"info", "stateset"})


def generate_openmetrics(registry: Collector = REGISTRY) -> bytes:
    """Render every family ``registry`` collects in OpenMetrics 1.0 text.

    A ``# UNIT`` line is written when the family has a unit and its name
    ends with it (OpenMetrics requires both). Sums that OpenMetrics forbids
    are left out: a negative or NaN ``_sum`` of a histogram or summary, and
    ``_sum`` with ``_count`` of a histogram that has a negative bucket bound
    (OpenMetrics treats both as counters).
    """
    lines: list[str] = []
    append = lines.append
    for family in registry.collect():
        name = family.name
        append(f"# HELP {name} {escape_help_openmetrics(family.help)}\n# TYPE {name} {family.type}\n")
        unit = family.unit
        if unit and family.type not in _UNITLESS and name.endswith("_" + unit):
            append(f"# UNIT {name} {unit}\n")
        created_name = name + "_created"
        samples: Iterable[Sample] = family.samples
        if family.type == "histogram" or family.type == "summary":
            samples = _valid_sums(family)
        for sample_name, labels, value, created in samples:
            text = labels.text if isinstance(labels, LabelSet) else render_labels(labels)
            append(f"{sample_name}{text} {format_float(value)}\n")
            if created is not None:
                append(f"{created_name}{text} {format_float(created)}\n")
    append("# EOF\n")
    return "".join(lines).encode("utf-8")


def _valid_sums(family: MetricFamily) -> Iterator[Sample]:
    """The samples of a histogram or summary without the sums OpenMetrics forbids.

    A histogram's ``_count`` goes with its ``_sum`` (OpenMetrics has neither
    or both), so it is held back until the ``_sum`` that follows it decides.
    A dropped ``_sum`` still passes its ``_created`` time on.
    """
    histogram = family.type == "histogram"
    bucket_name, count_name, sum_name = family.name + "_bucket", family.name + "_count", family.name + "_sum"
    held: Sample | None = None
    negative_bound = False
    for sample in family.samples:
        name = sample.name
        if name == bucket_name:
            negative_bound = negative_bound or sample.labels.get("le", "").startswith("-")
        elif name == count_name and histogram:
            if held is not None:
                yield held
            held = sample
            continue
        elif name == sum_name:
            if sample.value >= 0 and not negative_bound:
                if held is not None:
                    yield held
                yield sample
            elif sample.created is not None:  # the _count held back goes too
                yield Sample(family.name + "_created", sample.labels, sample.created)
            held = None
            negative_bound = False
            continue
        if held is not None:
            yield held
            held = None
        yield sample
    if held is not None:
        yield held
