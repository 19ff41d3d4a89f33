"""What can go wrong when metrics are defined or used; each error carries its data.

Every message names the metric and says what to change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "LABEL_NAME",
    "METRIC_NAME",
    "InvalidBuckets",
    "InvalidLabelName",
    "InvalidMetricName",
    "InvalidQuantiles",
    "LabelValuesMismatch",
    "LabelValuesRequired",
    "UnknownState",
]

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
"""What Prometheus accepts as a metric name."""
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
"""What Prometheus accepts as a label name."""


class InvalidMetricName(ValueError):
    """A metric was defined with a name Prometheus does not accept."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"invalid metric name {name!r}: a metric name (with namespace, subsystem and unit "
            f"joined by '_') must match {METRIC_NAME.pattern}"
        )


class InvalidLabelName(ValueError):
    """A metric was defined (or an info metric set) with a label name it may not have."""

    def __init__(self, metric: str, label: str, reason: str) -> None:
        self.metric = metric
        self.label = label
        super().__init__(f"metric {metric!r} cannot have the label name {label!r}: {reason}")


class InvalidBuckets(ValueError):
    """A histogram was defined with bucket bounds that are not strictly increasing numbers."""

    def __init__(self, metric: str, buckets: tuple[float, ...]) -> None:
        self.metric = metric
        self.buckets = buckets
        super().__init__(
            f"histogram {metric!r} got buckets {buckets!r}: bucket upper bounds must be numbers "
            "in strictly increasing order, without duplicates or NaN (+Inf is added when missing)"
        )


class InvalidQuantiles(ValueError):
    """A summary was defined with quantiles or a window it cannot estimate."""

    def __init__(self, metric: str, reason: str) -> None:
        self.metric = metric
        super().__init__(f"summary {metric!r}: {reason}")


class LabelValuesMismatch(ValueError):
    """``labels()`` or ``remove()`` got label values that do not fit the family's label names."""

    def __init__(
        self, metric: str, labelnames: tuple[str, ...], values: tuple[object, ...], names: tuple[str, ...]
    ) -> None:
        self.metric = metric
        self.labelnames = labelnames
        self.values = values
        self.names = names
        if not labelnames:
            message = f"metric {metric!r} has no label names; update it directly, without labels()"
        else:
            if values and names:
                given = f"values {values!r} and names {names!r}; pass values either by position or by name"
            elif names:
                given = f"label names {names!r}"
            else:
                given = f"{len(values)} value(s) {values!r}"
            message = f"metric {metric!r} has label names {labelnames!r}, but got {given}"
        super().__init__(message)


class LabelValuesRequired(ValueError):
    """A family with label names was updated itself instead of through one of its children."""

    def __init__(self, metric: str, labelnames: tuple[str, ...]) -> None:
        self.metric = metric
        self.labelnames = labelnames
        example = ", ".join(f"{name}=..." for name in labelnames)
        super().__init__(
            f"metric {metric!r} has label names {labelnames!r}: update one of its children, "
            f"{metric}.labels({example}), not the family itself"
        )


class UnknownState(ValueError):
    """A state set or enum was given a state it was not defined with."""

    def __init__(self, metric: str, state: object, states: Sequence[str]) -> None:
        self.metric = metric
        self.state = state
        self.states = tuple(states)
        super().__init__(
            f"metric {metric!r} has no state {state!r}; its states are {self.states!r} "
            "(states are fixed when the metric is defined)"
        )
