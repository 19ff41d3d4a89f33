"""Protobuf records written by hand: the tags and layouts of every message the service writes fast.

A remote-read response may hold millions of samples, so its records are
written straight in the wire format rather than through message objects (one
per sample). The bytes are exactly what protobuf's serializer writes for the
same message (fields in number order, proto3 defaults left out: a value whose
64 bits are zero, a zero timestamp, an empty string), which the tests check.

:func:`encode_labels`, :func:`encode_samples`, :func:`encode_chunk_records`
and :func:`encode_joined_labels` have a C twin (``_wire.c``); which one runs
is decided once by :mod:`remote_storage.native`. Without the C code the
protobuf runtime writes the records: a message object per label or sample
costs less than Python code writing the bytes itself (varints one byte at a
time), and its bytes are the reference.

The remote-write pieces at the end (``v1_*``, ``v2_*``, :data:`FIXED_SAMPLE_HEAD`)
are the building blocks of the load generator's request templates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from remote_storage import native
from remote_storage.chunks import as_columns
from remote_storage.protocol.pb import types_pb2
from remote_storage.storage import LABEL_SEPARATOR, EncodedChunk, Labels, TimeSeries
from remote_storage.varint import encode_uvarint

__all__ = [
    "FIXED_SAMPLE_HEAD",
    "SAMPLE_TIMESTAMP_TAG",
    "chunked_series_message",
    "encode_chunk_records",
    "encode_joined_labels",
    "encode_labels",
    "encode_samples",
    "label_records",
    "result_record",
    "series_record",
    "v1_label",
    "v1_series_header",
    "v2_label_refs",
    "v2_metadata",
    "v2_series_header",
    "v2_symbol",
]

# Tags: field number << 3 | wire type (0 varint, 1 64-bit, 2 length-delimited).
_RESULT = b"\x0a"  # ReadResponse.results (1)
_TIMESERIES = b"\x0a"  # QueryResult.timeseries (1); WriteRequest.timeseries (1)
_LABEL = b"\x0a"  # TimeSeries.labels (1); ChunkedSeries.labels (1)
_LABEL_NAME = b"\x0a"  # Label.name (1)
_LABEL_VALUE = b"\x12"  # Label.value (2)
_SAMPLE = b"\x12"  # TimeSeries.samples (2)
_SAMPLE_VALUE = b"\x09"  # Sample.value (1), 64-bit
#: ``Sample.timestamp`` (field 2, varint): the tag before a sample's timestamp.
SAMPLE_TIMESTAMP_TAG = b"\x10"
_CHUNKED_SERIES = b"\x0a"  # ChunkedReadResponse.chunked_series (1)
_QUERY_INDEX = b"\x10"  # ChunkedReadResponse.query_index (2), varint
_V2_SYMBOL = b"\x22"  # io.prometheus.write.v2.Request.symbols (4)
_V2_TIMESERIES = b"\x2a"  # Request.timeseries (5)
_V2_LABEL_REFS = b"\x0a"  # TimeSeries.labels_refs (1), packed varints
_V2_METADATA = b"\x2a"  # TimeSeries.metadata (5)
_V2_METADATA_TYPE = b"\x08"  # Metadata.type (1), varint
_V2_METADATA_HELP = b"\x18"  # Metadata.help_ref (3), varint
#: A ``Sample`` record of exactly 16 bytes (a value and a 6-byte timestamp varint) up to its value:
#: ``TimeSeries.samples`` tag, the length 16, ``Sample.value`` tag.
FIXED_SAMPLE_HEAD = _SAMPLE + b"\x10" + _SAMPLE_VALUE

_UINT64_MASK = (1 << 64) - 1
XOR = types_pb2.Chunk.XOR


def _field(tag: bytes, data: bytes) -> bytes:
    return tag + encode_uvarint(len(data)) + data


def _string_field(tag: bytes, data: bytes) -> bytes:
    return _field(tag, data) if data else b""  # proto3: "" is left out


# -- remote read: Label, Sample and Chunk records --------------------------------------


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


def _py_encode_joined_labels(data: bytes) -> bytes:
    """Label records of ``name 0xFF value 0xFF name ...`` (UTF-8 names and values; empty: none).

    The bytes are those of :func:`encode_labels` for the decoded pairs; the
    parts are copied as they are, without being decoded.
    """
    if not data:
        return b""
    parts = bytes(data).split(LABEL_SEPARATOR)
    if len(parts) % 2:
        raise ValueError(f"{len(parts)} parts in a joined label set: names and values do not pair up")
    records: list[bytes] = []
    for index in range(0, len(parts), 2):
        body = _string_field(_LABEL_NAME, parts[index]) + _string_field(_LABEL_VALUE, parts[index + 1])
        records += (_LABEL, encode_uvarint(len(body)), body)
    return b"".join(records)


def _py_encode_chunk_records(chunks: Sequence[EncodedChunk]) -> bytes:
    """The ``Chunk`` records (field 2) of a ``ChunkedSeries``, all of type XOR, written by protobuf."""
    message = types_pb2.ChunkedSeries()
    add = message.chunks.add
    for chunk in chunks:
        add(min_time_ms=chunk.min_time, max_time_ms=chunk.max_time, type=XOR, data=chunk.data)
    data: bytes = message.SerializeToString()
    return data


_EncodeLabels = Callable[[Labels], bytes]
_EncodeSamples = Callable[[Sequence[int], Sequence[float]], bytes]
_EncodeJoined = Callable[[bytes], bytes]
_EncodeChunkRecords = Callable[[Sequence[EncodedChunk]], bytes]


def _c_functions(
    codec: native.WireCodec,
) -> tuple[_EncodeLabels, _EncodeSamples, _EncodeJoined, _EncodeChunkRecords]:
    def _c_encode_samples(timestamps: Sequence[int], values: Sequence[float]) -> bytes:
        return codec.encode_samples(*as_columns(timestamps, values))

    def _c_encode_joined_labels(data: bytes) -> bytes:
        records = codec.encode_joined_labels(data)
        return _py_encode_joined_labels(data) if records is None else records  # None: Python says why

    return codec.encode_labels, _c_encode_samples, _c_encode_joined_labels, codec.encode_chunk_records


# The C functions exist whenever the extension is built (the tests run both side by side).
_c_encode_labels, _c_encode_samples, _c_encode_joined_labels, _c_encode_chunk_records = (
    _c_functions(native.wire) if native.wire is not None else (None, None, None, None)
)

encode_labels: _EncodeLabels
"""``encode_labels(labels)``: the ``Label`` records (field 1) of a ``TimeSeries`` or ``ChunkedSeries``."""
encode_samples: _EncodeSamples
"""``encode_samples(timestamps, values)``: the ``Sample`` records (field 2) of a ``TimeSeries``."""
encode_joined_labels: _EncodeJoined
"""``encode_joined_labels(data)``: the ``Label`` records of a label set kept joined (``name 0xFF value ...``).

For label sets in the storage form (:func:`remote_storage.storage.join_labels`):
the wire form without decoding the strings. Raises ValueError when names and
values do not pair up.
"""
encode_chunk_records: _EncodeChunkRecords
"""``encode_chunk_records(chunks)``: the ``Chunk`` records (field 2) of a ``ChunkedSeries``, type XOR."""
if (
    native.IMPLEMENTATION == "c"
    and _c_encode_labels
    and _c_encode_samples
    and _c_encode_joined_labels
    and _c_encode_chunk_records
):
    encode_labels, encode_samples = _c_encode_labels, _c_encode_samples
    encode_joined_labels, encode_chunk_records = _c_encode_joined_labels, _c_encode_chunk_records
else:
    encode_labels, encode_samples = _py_encode_labels, _py_encode_samples
    encode_joined_labels, encode_chunk_records = _py_encode_joined_labels, _py_encode_chunk_records


# -- remote read: the messages around the records --------------------------------------


def label_records(series: TimeSeries) -> bytes:
    """The ``Label`` records of a series: from its joined label bytes when the backend handed them over."""
    joined = series.joined_labels
    return encode_labels(series.labels) if joined is None else encode_joined_labels(joined)


def series_record(body: Sequence[bytes]) -> list[bytes]:
    """A ``QueryResult.timeseries`` record around the pieces of its body, as pieces to join."""
    return [_TIMESERIES, encode_uvarint(sum(map(len, body))), *body]


def result_record(records: Sequence[bytes]) -> list[bytes]:
    """A ``ReadResponse.results`` record around the pieces of its series records, as pieces to join."""
    return [_RESULT, encode_uvarint(sum(map(len, records))), *records]


def chunked_series_message(label_records: bytes, chunk_records: bytes, query_index: int) -> bytes:
    """A ``ChunkedReadResponse`` holding one series (its label and chunk records) of query ``query_index``."""
    tail = _QUERY_INDEX + encode_uvarint(query_index & _UINT64_MASK) if query_index else b""
    size = encode_uvarint(len(label_records) + len(chunk_records))
    return b"".join((_CHUNKED_SERIES, size, label_records, chunk_records, tail))


# -- remote write: pieces of request templates --------------------------------------------


def v1_label(name: bytes, value: bytes) -> bytes:
    """A ``TimeSeries.labels`` record of remote write 1.0, both fields written even when empty."""
    return _field(_LABEL, _field(_LABEL_NAME, name) + _field(_LABEL_VALUE, value))


def v1_series_header(length: int) -> bytes:
    """The tag and length of a ``WriteRequest.timeseries`` record whose body is ``length`` bytes."""
    return _TIMESERIES + encode_uvarint(length)


def v2_symbol(text: bytes) -> bytes:
    """A ``Request.symbols`` record of remote write 2.0."""
    return _field(_V2_SYMBOL, text)


def v2_label_refs(refs: bytes) -> bytes:
    """The ``TimeSeries.labels_refs`` record (packed varints, ``refs``) of remote write 2.0."""
    return _field(_V2_LABEL_REFS, refs)


def v2_metadata(metric_type: int, help_ref: int) -> bytes:
    """A ``TimeSeries.metadata`` record of remote write 2.0: the type and the help text's symbol."""
    body = _V2_METADATA_TYPE + encode_uvarint(metric_type) + _V2_METADATA_HELP + encode_uvarint(help_ref)
    return _field(_V2_METADATA, body)


def v2_series_header(length: int) -> bytes:
    """The tag and length of a ``Request.timeseries`` record whose body is ``length`` bytes."""
    return _V2_TIMESERIES + encode_uvarint(length)
