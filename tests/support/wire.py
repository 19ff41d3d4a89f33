"""Request bodies and headers as Prometheus sends them, built with the project's own encoders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from remote_storage.matchers import Matcher
from remote_storage.protocol import snappy
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.read import decode_read_response, encode_read_request
from remote_storage.protocol.write import encode_v1, encode_v2
from remote_storage.storage import Labels, MetricMetadata, Query, QueryResult, ReadRequest, TimeSeries

V1_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
V2_HEADERS = {
    "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "2.0.0",
}
READ_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "Accept-Encoding": "snappy",
    "X-Prometheus-Remote-Read-Version": "0.1.0",
}


def series(timestamps: Sequence[int], values: Sequence[float], **labels: str) -> TimeSeries:
    return TimeSeries(Labels.from_mapping(labels), list(timestamps), list(values))


def v1_body(items: Iterable[TimeSeries], metadata: Iterable[MetricMetadata] = ()) -> bytes:
    return snappy.compress(encode_v1(items, metadata))


def v2_body(items: Iterable[TimeSeries], metadata: Iterable[MetricMetadata] = ()) -> bytes:
    return snappy.compress(encode_v2(items, metadata))


def read_body(
    *queries: tuple[int, int, Sequence[Matcher]],
    accepted: Sequence[ResponseType] = (ResponseType.SAMPLES,),
) -> bytes:
    request = ReadRequest(tuple(Query(start, end, tuple(matchers)) for start, end, matchers in queries))
    return snappy.compress(encode_read_request(request, accepted))


def read_results(body: bytes) -> list[QueryResult]:
    return decode_read_response(snappy.decompress(body, 1 << 30))
