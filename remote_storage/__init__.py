"""prometheus-remote-storage: remote write and remote read storage for Prometheus."""

from remote_storage.errors import SampleConflict, StorageUnavailable
from remote_storage.matchers import Matcher, MatchType
from remote_storage.storage import (
    Context,
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    MetricType,
    Query,
    QueryResult,
    ReadHints,
    ReadRequest,
    RemoteStorage,
    TimeSeries,
    WriteRequest,
)

__version__ = "0.1.0"

__all__ = [
    "Context",
    "Exemplar",
    "Histogram",
    "Labels",
    "MatchType",
    "Matcher",
    "MetricMetadata",
    "MetricType",
    "Query",
    "QueryResult",
    "ReadHints",
    "ReadRequest",
    "RemoteStorage",
    "SampleConflict",
    "StorageUnavailable",
    "TimeSeries",
    "WriteRequest",
    "__version__",
]
