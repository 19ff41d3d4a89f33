"""The instrumentation runtime: metrics, registries, exposition, an exporter and a pusher.

    >>> from remote_storage.instrument import Counter, Registry, generate_latest
    >>> registry = Registry()
    >>> requests = Counter("requests", "Requests answered.", ["code"], registry=registry)
    >>> requests.labels("200").inc()
    >>> print(generate_latest(registry).decode(), end="")
    # HELP requests_total Requests answered.
    # TYPE requests_total counter
    requests_total{code="200"} 1.0

Import from here; the modules behind this facade may move. The exporter
and the pusher (aiohttp, protobuf) are imported on first use, so that code
that only defines and updates metrics does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from remote_storage.instrument.exposition import (
    CONTENT_TYPE_LATEST,
    Encoder,
    choose_encoder,
    generate_latest,
    write_to_textfile,
)
from remote_storage.instrument.histogram import (
    DEFAULT_BUCKETS,
    Histogram,
    HistogramChild,
    exponential_buckets,
    linear_buckets,
)
from remote_storage.instrument.info import Info, InfoChild
from remote_storage.instrument.local import LocalCounter, LocalHistogram, LocalIntCounter
from remote_storage.instrument.metrics import (
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    IntCounter,
    IntCounterChild,
    IntGauge,
    IntGaugeChild,
)
from remote_storage.instrument.misuse import (
    InvalidBuckets,
    InvalidLabelName,
    InvalidMetricName,
    InvalidQuantiles,
    LabelValuesMismatch,
    LabelValuesRequired,
    UnknownState,
)
from remote_storage.instrument.openmetrics import CONTENT_TYPE_OPENMETRICS, generate_openmetrics
from remote_storage.instrument.process import PROCESS_COLLECTOR, ProcessCollector
from remote_storage.instrument.registry import (
    REGISTRY,
    Collector,
    CollectorRegistry,
    DuplicateMetricName,
    Registry,
)
from remote_storage.instrument.samples import FamilyType, LabelSet, MetricFamily, Sample
from remote_storage.instrument.stateset import Enum, EnumChild, StateSet, StateSetChild
from remote_storage.instrument.static import Bound, bind
from remote_storage.instrument.summary import Summary, SummaryChild
from remote_storage.instrument.timers import CountExceptions, InProgress, Timer

if TYPE_CHECKING:
    from remote_storage.instrument.apps import make_asgi_app, make_wsgi_app
    from remote_storage.instrument.exporter import (
        MetricsExporter,
        metrics_handler,
        start_http_server,
        start_metrics_server,
        start_wsgi_server,
    )
    from remote_storage.instrument.pusher import Pusher, PushError, PushFailed, PushRejected, start_pusher
    from remote_storage.instrument.pushgateway import (
        PushgatewayError,
        delete_from_gateway,
        instance_ip_grouping_key,
        push_to_gateway,
        pushadd_to_gateway,
    )
    from remote_storage.instrument.service import ServiceThread, serve

# Imported on first use (PEP 562): name -> module.
_LAZY = {
    "MetricsExporter": "exporter",
    "metrics_handler": "exporter",
    "start_metrics_server": "exporter",
    "Pusher": "pusher",
    "PushError": "pusher",
    "PushFailed": "pusher",
    "PushRejected": "pusher",
    "start_pusher": "pusher",
    "ServiceThread": "service",
    "serve": "service",
    # prometheus_client's names
    "start_http_server": "exporter",
    "start_wsgi_server": "exporter",
    "make_wsgi_app": "apps",
    "make_asgi_app": "apps",
    "PushgatewayError": "pushgateway",
    "push_to_gateway": "pushgateway",
    "pushadd_to_gateway": "pushgateway",
    "delete_from_gateway": "pushgateway",
    "instance_ip_grouping_key": "pushgateway",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CONTENT_TYPE_LATEST",
    "CONTENT_TYPE_OPENMETRICS",
    "DEFAULT_BUCKETS",
    "PROCESS_COLLECTOR",
    "REGISTRY",
    "Bound",
    "Collector",
    "CollectorRegistry",
    "CountExceptions",
    "Counter",
    "CounterChild",
    "DuplicateMetricName",
    "Encoder",
    "Enum",
    "EnumChild",
    "FamilyType",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "InProgress",
    "Info",
    "InfoChild",
    "IntCounter",
    "IntCounterChild",
    "IntGauge",
    "IntGaugeChild",
    "InvalidBuckets",
    "InvalidLabelName",
    "InvalidMetricName",
    "InvalidQuantiles",
    "LabelSet",
    "LabelValuesMismatch",
    "LabelValuesRequired",
    "LocalCounter",
    "LocalHistogram",
    "LocalIntCounter",
    "MetricFamily",
    "MetricsExporter",
    "ProcessCollector",
    "PushError",
    "PushFailed",
    "PushRejected",
    "Pusher",
    "PushgatewayError",
    "Registry",
    "Sample",
    "ServiceThread",
    "StateSet",
    "StateSetChild",
    "Summary",
    "SummaryChild",
    "Timer",
    "UnknownState",
    "bind",
    "choose_encoder",
    "delete_from_gateway",
    "exponential_buckets",
    "generate_latest",
    "generate_openmetrics",
    "instance_ip_grouping_key",
    "linear_buckets",
    "make_asgi_app",
    "make_wsgi_app",
    "metrics_handler",
    "push_to_gateway",
    "pushadd_to_gateway",
    "serve",
    "start_http_server",
    "start_metrics_server",
    "start_pusher",
    "start_wsgi_server",
    "write_to_textfile",
]
