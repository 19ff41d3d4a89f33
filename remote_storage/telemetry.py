"""The service's own metrics, served on ``GET /metrics``.

All names start with ``remote_storage_``. Children whose label values are
known up front are bound once here, so request handlers do no label lookups.
"""

from __future__ import annotations

from remote_storage.instrument import Counter, Gauge, Histogram, ProcessCollector, Registry

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class ServiceMetrics:
    """Metric families of the server, registered on ``registry``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        ProcessCollector(registry=registry)  # process_* (CPU, memory, file descriptors), as every exporter
        self.requests = Counter(
            "remote_storage_http_requests",
            "HTTP requests answered, by handler and status code.",
            ["handler", "code"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "remote_storage_http_request_duration_seconds",
            "Time from receiving a request to sending its response, by handler.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.write_requests = Counter(
            "remote_storage_write_requests",
            "Remote-write requests received, by protocol version.",
            ["version"],
            registry=registry,
        )
        decoded = Counter(
            "remote_storage_write_bodies_decoded",
            "Remote-write bodies decoded, by where: in the decode process (--decoder) or the serving one.",
            ["where"],
            registry=registry,
        )
        self.decoded_in_process = decoded.labels("decode_process")
        self.decoded_inline = decoded.labels("serving_process")
        self.write_rejected = Counter(
            "remote_storage_write_requests_rejected",
            "Remote-write requests answered with an error, by reason.",
            ["reason"],
            registry=registry,
        )
        written = Counter(
            "remote_storage_written",
            "Data points stored by acknowledged writes, by type (sample, histogram, exemplar).",
            ["type"],
            registry=registry,
        )
        self.samples_written = written.labels("sample")
        self.histograms_written = written.labels("histogram")
        self.exemplars_written = written.labels("exemplar")
        self.read_requests = Counter(
            "remote_storage_read_requests",
            "Remote-read requests received, by response type.",
            ["response_type"],
            registry=registry,
        )
        self.read_rejected = Counter(
            "remote_storage_read_requests_rejected",
            "Remote-read requests answered with an error, by reason.",
            ["reason"],
            registry=registry,
        )
        self.read_queries = Counter(
            "remote_storage_read_queries", "Queries received in remote-read requests.", registry=registry
        )
        self.read_series = Counter(
            "remote_storage_read_series", "Series returned by remote-read queries.", registry=registry
        )
        self.read_samples = Counter(
            "remote_storage_read_samples", "Samples returned by remote-read queries.", registry=registry
        )
        backend = Histogram(
            "remote_storage_backend_duration_seconds",
            "Time the storage backend took per call, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.stored_series = Gauge(
            "remote_storage_series",
            "Series held by the storage backend (all tenants), as of the last scrape.",
            registry=registry,
        )
        self.sample_bytes = Gauge(
            "remote_storage_sample_bytes",
            "Bytes the storage backend holds for float samples, where it can tell cheaply.",
            registry=registry,
        )
        self.sealed_chunk_bytes = Gauge(
            "remote_storage_sealed_chunk_bytes",
            "Bytes of sealed XOR chunk data the storage backend holds, where it can tell cheaply.",
            registry=registry,
        )
        self.sealed_samples = Gauge(
            "remote_storage_sealed_samples",
            "Float samples inside the storage backend's sealed XOR chunks, where it can tell cheaply.",
            registry=registry,
        )
        self.active_series = Gauge(
            "remote_storage_active_series",
            "Series that received samples within --active-series-window, per tenant, "
            "as this process counts them for --max-active-series.",
            ["tenant"],
            registry=registry,
        )
        self.backend_write_duration = backend.labels("write")
        self.backend_read_duration = backend.labels("read")
        self._add_pressure_metrics(registry)

    def _add_pressure_metrics(self, registry: Registry) -> None:
        """Back-pressure and connection hygiene (429s are also in ``remote_storage_http_requests``)."""
        self.inflight_write_bytes = Gauge(
            "remote_storage_inflight_write_bytes",
            "Bytes of write bodies (compressed plus decompressed) held by requests in flight.",
            registry=registry,
        )
        self.inflight_reads = Gauge(
            "remote_storage_inflight_reads", "Remote-read requests being served.", registry=registry
        )
        self.overloaded = Counter(
            "remote_storage_overloaded_requests",
            "Requests answered 429 because a bound on work in flight was reached, by handler.",
            ["handler"],
            registry=registry,
        )
        self.open_connections = Gauge(
            "remote_storage_open_connections", "Client connections open.", registry=registry
        )
        self.connections_closed = Counter(
            "remote_storage_connections_closed",
            "Client connections the server closed, by reason: header_timeout, evicted or refused "
            "(the last two at --max-connections).",
            ["reason"],
            registry=registry,
        )
        self.accept_errors = Counter(
            "remote_storage_accept_errors",
            "Failed accept() calls on the listening socket, by errno name (EMFILE, ENFILE, ...).",
            ["errno"],
            registry=registry,
        )
        self.client_aborts = Counter(
            "remote_storage_client_aborts",
            "Requests whose client closed the connection before the answer, by handler.",
            ["handler"],
            registry=registry,
        )
