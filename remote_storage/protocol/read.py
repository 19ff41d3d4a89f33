"""Remote read: ``ReadRequest`` bodies to :class:`ReadRequest`, results to ``ReadResponse``.

``SAMPLES`` responses are one snappy-compressed ``ReadResponse`` holding one
``QueryResult`` per query, in query order. The encoders of requests serve the
tests and any Python client.

A response may hold millions of samples, so it is written straight in the
wire format rather than through protobuf message objects (one per sample):
each series becomes its ``TimeSeries`` record from the label records
(:func:`encode_labels`), the sample records (:func:`encode_samples`) and the
native-histogram records (rare: serialized by protobuf); the records are
joined once at the end. The bytes are exactly what protobuf's serializer
writes for the same message (fields in number order, proto3 defaults left
out: a value whose 64 bits are zero, a zero timestamp, an empty string),
which the tests check. :func:`encode_labels` and :func:`encode_samples` come
from the C codec when it is in use (see
:data:`remote_storage.chunks.IMPLEMENTATION`); else the protobuf runtime
writes the records, one series at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from remote_storage import chunks
from remote_storage.errors import InvalidQuery
from remote_storage.matchers import InvalidMatcher, Matcher, MatchType
from remote_storage.protocol import histograms
from remote_storage.protocol.messages import parse
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.pb import remote_pb2, types_pb2
from remote_storage.storage import (
    Labels,
    Query,
    QueryResult,
    ReadHints,
    ReadRequest,
    TimeSeries,
)
from remote_storage.varint import encode_uvarint

__all__ = [
    "decode_read_request",
    "decode_read_response",
    "encode_joined_labels",
    "encode_labels",
    "encode_read_request",
    "encode_read_response",
    "encode_samples",
]

# Tags (field number << 3 | wire type) of ReadResponse.results and QueryResult.timeseries.
_RESULT = b"\x0a"
_SERIES = b"\x0a"
_LABEL = b"\x0a"  # TimeSeries.labels


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


# Without the C codec the protobuf runtime writes the records: a message
# object per label or sample costs less than Python code writing the bytes
# itself (varints one byte at a time), and its bytes are the reference.


def _py_encode_labels(labels: Labels) -> bytes:
    """The ``Label`` records (field 1) of a ``TimeSeries`` or ``ChunkedSeries``."""
    message = types_pb2.TimeSeries()
    add = message.labels.add
    for name, value in labels:
        add(name=name, value=value)
    data: bytes = message.SerializeToString()
    return data


def _py_encode_samples(timestamps: Sequence[int], values: Sequence[float]) -> bytes:
    """The ``Sample`` records (field 2) of a ``TimeSeries``."""
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values: they must pair up")
    message = types_pb2.TimeSeries()
    add = message.samples.add
    for t, v in zip(timestamps, values, strict=True):
        add(value=v, timestamp=t)
    data: bytes = message.SerializeToString()
    return data


def _string_field(tag: bytes, data: bytes) -> bytes:
    return tag + encode_uvarint(len(data)) + data if data else b""  # proto3: "" is left out


def _py_encode_joined_labels(data: bytes) -> bytes:
    """Label records of ``name 0xFF value 0xFF name ...`` (UTF-8 names and values; empty: none).

    The bytes are those of :func:`encode_labels` for the decoded pairs; the
    parts are copied as they are, without being decoded.
    """
    if not data:
        return b""
    parts = bytes(data).split(b"\xff")
    if len(parts) % 2:
        raise ValueError(f"{len(parts)} parts in a joined label set: names and values do not pair up")
    records: list[bytes] = []
    for index in range(0, len(parts), 2):
        body = _string_field(b"\x0a", parts[index]) + _string_field(b"\x12", parts[index + 1])
        records += (_LABEL, encode_uvarint(len(body)), body)
    return b"".join(records)


def _c_encode_joined_labels(data: bytes) -> bytes:
    assert chunks.c_codec is not None
    records = chunks.c_codec.encode_joined_labels(data)
    return _py_encode_joined_labels(data) if records is None else records  # None: Python says why


encode_joined_labels: Callable[[bytes], bytes]
"""``encode_joined_labels(data)``: the ``Label`` records of a label set kept as ``name 0xFF value ...``.

For backends that store label sets in that form (UTF-8 never holds the
byte 0xFF): the wire form without decoding the strings. Raises ValueError
when names and values do not pair up.
"""
if chunks.IMPLEMENTATION == "c" and chunks.c_codec is not None:
    encode_joined_labels = _c_encode_joined_labels
else:
    encode_joined_labels = _py_encode_joined_labels


_EncodeLabels = Callable[[Labels], bytes]
_EncodeSamples = Callable[[Sequence[int], Sequence[float]], bytes]


def _c_functions(codec: chunks.Codec) -> tuple[_EncodeLabels, _EncodeSamples]:
    def _c_encode_samples(timestamps: Sequence[int], values: Sequence[float]) -> bytes:
        return codec.encode_samples(*chunks.as_columns(timestamps, values))

    return codec.encode_labels, _c_encode_samples


_c_encode_labels, _c_encode_samples = (
    _c_functions(chunks.c_codec) if chunks.c_codec is not None else (None, None)
)
encode_labels: _EncodeLabels
encode_samples: _EncodeSamples
if chunks.IMPLEMENTATION == "c" and _c_encode_labels is not None and _c_encode_samples is not None:
    encode_labels, encode_samples = _c_encode_labels, _c_encode_samples
else:
    encode_labels, encode_samples = _py_encode_labels, _py_encode_samples


def _series_record(series: TimeSeries) -> list[bytes]:
    """One ``TimeSeries`` record (tag and length included) as pieces to join."""
    body = [encode_labels(series.labels) if series.label_records is None else series.label_records]
    if series.timestamps:
        body.append(encode_samples(series.timestamps, series.values))
    if series.histograms:  # rare enough for message objects: the records of field 4
        message = types_pb2.TimeSeries()
        for h in series.histograms:
            histograms.to_proto(h, message.histograms.add())
        body.append(message.SerializeToString())
    return [_SERIES, encode_uvarint(sum(map(len, body))), *body]


def encode_read_response(results: Iterable[QueryResult]) -> bytes:
    """Serialize a ``ReadResponse`` (not compressed), one ``QueryResult`` per query.

    The bytes equal ``remote_pb2.ReadResponse`` serialized by protobuf.
    """
    pieces: list[bytes] = []
    for result in results:
        records: list[bytes] = []
        for series in result.series:
            records += _series_record(series)
        pieces += (_RESULT, encode_uvarint(sum(map(len, records))))
        pieces += records
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
