"""What collectors hand to exposition: metric families, their samples and label sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from remote_storage.instrument.textformat import escape_label_value, render_labels

__all__ = ["FamilyType", "LabelSet", "MetricFamily", "Sample"]

FamilyType = Literal[
    "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"
]
"""The OpenMetrics type name of a family; each exposition format maps them to what it can say.

Not :class:`remote_storage.storage.MetricType`, the remote-write enum the pusher maps these names to.
"""


class Sample(NamedTuple):
    """One line of exposition: a full sample name (with any suffix such as
    ``_total`` or ``_bucket``), its labels and its value.

    ``created`` is set on the last sample of a counter, histogram or summary
    child (``_total``, or ``_sum``): the Unix time the child was created or
    last reset. OpenMetrics writes it as ``<family>_created`` after that
    sample; the text format 0.0.4 and remote write leave it out.
    """

    name: str
    labels: Mapping[str, str]
    value: float
    created: float | None = None


@dataclass(slots=True)
class MetricFamily:
    """A metric family as collected: its name, type, help text, unit and samples.

    ``name`` is the family name without type suffixes: a counter family named
    ``requests`` carries samples named ``requests_total``, a histogram family
    ``latency_seconds`` samples named ``latency_seconds_bucket``, ``_sum`` and
    ``_count``.
    """

    name: str
    type: FamilyType
    help: str
    unit: str = ""
    samples: list[Sample] = field(default_factory=list)


class LabelSet(dict[str, str]):
    """The labels of one child, with their text rendering (``text``) computed once.

    Metrics build one per child when the child is created and hand the same
    object out at every collection, so exposition does not sort and escape
    the same label values on every scrape. Encoders use ``text`` when a
    sample's labels are a ``LabelSet`` and render any other mapping
    themselves. Treat it as read-only: changing it would not change ``text``.

        >>> labels = LabelSet({"path": "/", "code": "200"})
        >>> labels.text
        '{code="200",path="/"}'
        >>> labels.with_label("le", "0.5").text
        '{code="200",le="0.5",path="/"}'
    """

    __slots__ = ("_split", "text")

    def __init__(self, labels: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(labels)
        self.text = render_labels(self)
        self._split: tuple[str, str, str] | None = None

    def with_label(self, name: str, value: str) -> LabelSet:
        """A copy with the label ``name`` (not already present) added.

        Meant for the labels a metric type adds per sample (``le``,
        ``quantile``, a state set's own name): where ``name`` goes in the
        sorted rendering is worked out once per label set, so each copy costs
        a dict copy and one string concatenation.
        """
        split = self._split
        if split is None or split[0] != name:
            split = self._split = self._split_at(name)
        copy = LabelSet.__new__(LabelSet)
        dict.update(copy, self)
        copy[name] = value
        copy.text = f'{split[1]}{name}="{escape_label_value(value)}"{split[2]}'
        copy._split = None
        return copy

    def _split_at(self, name: str) -> tuple[str, str, str]:
        before = {key: value for key, value in self.items() if key < name}
        after = {key: value for key, value in self.items() if key > name}
        prefix = render_labels(before)[:-1] + "," if before else "{"
        suffix = "," + render_labels(after)[1:] if after else "}"
        return name, prefix, suffix


NO_LABELS = LabelSet()
"""The label set of a metric without labels or const labels."""
