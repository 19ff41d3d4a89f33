"""Remote read: ``ReadRequest`` bodies to :class:`ReadRequest`, results to ``ReadResponse``.

``SAMPLES`` responses are one snappy-compressed ``ReadResponse`` holding one
``QueryResult`` per query, in query order. The encoders of requests serve the
tests and any Python client.

A response may hold millions of samples, so it is written straight in the
wire format rather than through protobuf message objects (one per sample):
each series becomes its ``TimeSeries`` record from the label records (from
the series' joined label bytes when the backend handed them over, else from
its labels), the sample records and the native-histogram records (rare:
serialized by protobuf); the records are joined once at the end. The records
are the wire layer's (:mod:`remote_storage.protocol.wire.records`, C or
Python as :mod:`remote_storage.native` decided); the bytes are exactly what
protobuf's serializer writes for the same message, which the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from remote_storage.errors import InvalidQuery
from remote_storage.matchers import InvalidMatcher, Matcher, MatchType
from remote_storage.protocol import histograms
from remote_storage.protocol.messages import parse
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.pb import remote_pb2, types_pb2
from remote_storage.protocol.wire import records
from remote_storage.storage import (
    Labels,
    Query,
    QueryResult,
    ReadHints,
    ReadRequest,
    TimeSeries,
)

__all__ = [
    "decode_read_request",
    "decode_read_response",
    "encode_read_request",
    "encode_read_response",
]


def _query_from_proto(index: int, message: remote_pb2.Query) -> Query:
    if message.start_timestamp_ms > message.end_timestamp_ms:
        raise InvalidQuery(
            f"query {index}: start {message.start_timestamp_ms} is after end {message.end_timestamp_ms}"
        )
    try:
        matchers = tuple(Matcher(MatchType(m.type), m.name, m.value) for m in message.matchers)
    except (InvalidMatcher, ValueError) as exc:
        raise InvalidQuery(f"query {index}: {exc}") from None
    hints = None
    if message.HasField("hints"):
        h = message.hints
        hints = ReadHints(h.step_ms, h.func, h.start_ms, h.end_ms, tuple(h.grouping), h.by, h.range_ms)
    return Query(message.start_timestamp_ms, message.end_timestamp_ms, matchers, hints)


def decode_read_request(payload: bytes) -> tuple[ReadRequest, list[int]]:
    """Decode an uncompressed ``ReadRequest``; also return its accepted response types."""
    message = remote_pb2.ReadRequest()
    parse(message, payload)
    queries = tuple(_query_from_proto(i, q) for i, q in enumerate(message.queries))
    return ReadRequest(queries), list(message.accepted_response_types)


def encode_read_request(
    request: ReadRequest, accepted: Sequence[ResponseType] = (ResponseType.SAMPLES,)
) -> bytes:
    """Serialize a ``ReadRequest`` (not compressed)."""
    message = remote_pb2.ReadRequest()
    for query in request.queries:
        q = message.queries.add(start_timestamp_ms=query.start_ms, end_timestamp_ms=query.end_ms)
        for m in query.matchers:
            q.matchers.add(type=int(m.type), name=m.name, value=m.value)
        if query.hints is not None:
            h = query.hints
            q.hints.step_ms = h.step_ms
            q.hints.func = h.func
            q.hints.start_ms = h.start_ms
            q.hints.end_ms = h.end_ms
            q.hints.grouping.extend(h.grouping)
            q.hints.by = h.by
            q.hints.range_ms = h.range_ms
    message.accepted_response_types.extend(int(t) for t in accepted)
    data: bytes = message.SerializeToString()
    return data


def _series_record(series: TimeSeries) -> list[bytes]:
    """One ``TimeSeries`` record (tag and length included) as pieces to join."""
    body = [records.label_records(series)]
    if series.timestamps:
        body.append(records.encode_samples(series.timestamps, series.values))
    if series.histograms:  # rare enough for message objects: the records of field 4
        message = types_pb2.TimeSeries()
        for h in series.histograms:
            histograms.to_proto(h, message.histograms.add())
        body.append(message.SerializeToString())
    return records.series_record(body)


def encode_read_response(results: Iterable[QueryResult]) -> bytes:
    """Serialize a ``ReadResponse`` (not compressed), one ``QueryResult`` per query.

    The bytes equal ``remote_pb2.ReadResponse`` serialized by protobuf.
    """
    pieces: list[bytes] = []
    for result in results:
        series_records: list[bytes] = []
        for series in result.series:
            series_records += _series_record(series)
        pieces += records.result_record(series_records)
    return b"".join(pieces)  # the only copy of the records


def decode_read_response(payload: bytes) -> list[QueryResult]:
    """Decode an uncompressed ``ReadResponse`` (used by clients and tests)."""
    message = remote_pb2.ReadResponse()
    parse(message, payload)
    results = []
    for result in message.results:
        series = []
        for ts in result.timeseries:
            series.append(
                TimeSeries(
                    Labels((label.name, label.value) for label in ts.labels),
                    [s.timestamp for s in ts.samples],
                    [s.value for s in ts.samples],
                    [histograms.from_proto(h) for h in ts.histograms],
                )
            )
        results.append(QueryResult(series))
    return results
