"""The instrumentation runtime: metrics, registries and their exposition.

    >>> from remote_storage.instrument import Counter, Registry, generate_latest
    >>> registry = Registry()
    >>> requests = Counter("requests", "Requests answered.", ["code"], registry=registry)
    >>> requests.labels("200").inc()
    >>> print(generate_latest(registry).decode(), end="")
    # HELP requests_total Requests answered.
    # TYPE requests_total counter
    requests_total{code="200"} 1.0

Import from here; the modules behind this facade may move.
"""

from remote_storage.instrument.exposition import (
    CONTENT_TYPE_LATEST,
    Encoder,
    choose_encoder,
    generate_latest,
)
from remote_storage.instrument.metrics import (
    DEFAULT_BUCKETS,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
    InvalidBuckets,
    InvalidLabelName,
    InvalidMetricName,
    LabelValuesMismatch,
    LabelValuesRequired,
)
from remote_storage.instrument.registry import (
    REGISTRY,
    Collector,
    DuplicateMetricName,
    MetricFamily,
    MetricType,
    Registry,
    Sample,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DEFAULT_BUCKETS",
    "REGISTRY",
    "Collector",
    "Counter",
    "CounterChild",
    "DuplicateMetricName",
    "Encoder",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "InvalidBuckets",
    "InvalidLabelName",
    "InvalidMetricName",
    "LabelValuesMismatch",
    "LabelValuesRequired",
    "MetricFamily",
    "MetricType",
    "Registry",
    "Sample",
    "choose_encoder",
    "generate_latest",
]
