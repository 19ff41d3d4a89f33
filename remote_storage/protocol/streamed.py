"""``STREAMED_XOR_CHUNKS`` remote-read responses: frames of ``ChunkedReadResponse``.

Each frame is ``uvarint(len) | CRC-32C(message), big-endian | message`` and
holds exactly one series of one query (Prometheus' client reads only the
first series of a frame). A series whose chunks do not fit the frame budget
(``max_frame_bytes`` minus its labels) continues in further frames with the
same labels. Float samples travel as XOR chunks: those a backend hands over
are passed on (any size up to the format's 65,535 samples), others are cut at
120 samples; native histograms are not sent in this mode (their chunk encodings are not
implemented), so readers that need them should ask for ``SAMPLES``.

Frames are written straight in the wire format, without protobuf message
objects: a series' label records are encoded once
(:func:`~remote_storage.protocol.read.encode_labels`) and every frame of the
series reuses them; each chunk becomes its ``Chunk`` record around the chunk
bytes as they are (:func:`encode_chunk_records`). The bytes are those
protobuf would write for the same ``ChunkedReadResponse`` (the tests compare
them). Like the encoders of :mod:`remote_storage.protocol.read`, the record
encoder comes from the C codec when it is in use (see
:data:`remote_storage.chunks.IMPLEMENTATION`); else the protobuf runtime
writes the records.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence

import crc32c

from remote_storage import chunks as _chunks
from remote_storage.chunks import (
    SAMPLES_PER_CHUNK,
    chunk_samples,
    decode_chunk,
    encode_chunk,
    split_into_chunks,
)
from remote_storage.protocol.messages import parse
from remote_storage.protocol.pb import remote_pb2, types_pb2
from remote_storage.protocol.read import encode_labels
from remote_storage.storage import EncodedChunk, Labels, TimeSeries
from remote_storage.varint import decode_uvarint, encode_uvarint

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_FRAME_BYTES",
    "chunks_of",
    "decode_frames",
    "encode_chunk_records",
    "encode_series_frames",
    "frame",
    "series_frames",
]

CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
DEFAULT_MAX_FRAME_BYTES = 1_048_576
XOR = types_pb2.Chunk.XOR

# Tags (field number << 3 | wire type) of ChunkedReadResponse.chunked_series/query_index.
_SERIES = b"\x0a"
_QUERY_INDEX = b"\x10"
_UINT64_MASK = (1 << 64) - 1
# What a chunk is taken to add to a frame when filling it: its data plus room
# for its record's fields. Not the exact size; kept as it was so that frames
# are cut where they always were.
_CHUNK_OVERHEAD = 32


def frame(message: bytes) -> bytes:
    """Wrap a serialized ``ChunkedReadResponse`` as one stream frame."""
    return b"".join((encode_uvarint(len(message)), crc32c.crc32c(message).to_bytes(4, "big"), message))


def _encode(timestamps: Sequence[int], values: Sequence[float]) -> list[EncodedChunk]:
    if len(timestamps) <= SAMPLES_PER_CHUNK:  # one chunk at most: the common case, made short
        if not timestamps:
            return []
        return [EncodedChunk(timestamps[0], timestamps[-1], encode_chunk(timestamps, values))]
    return split_into_chunks(timestamps, values)


def _trimmed(chunk: EncodedChunk, start: int, end: int) -> list[EncodedChunk]:
    """The chunk itself when it lies inside [start, end]; else its samples inside, encoded again."""
    if start <= chunk.min_time and chunk.max_time <= end:
        return [chunk]
    timestamps, values = decode_chunk(chunk.data)
    first, last = bisect_left(timestamps, start), bisect_right(timestamps, end)
    return _encode(timestamps[first:last], values[first:last]) if first < last else []


def chunks_of(series: TimeSeries, start: int, end: int) -> list[EncodedChunk]:
    """XOR chunks of the float samples of a series in [start, end].

    Chunks the backend handed over are passed through byte for byte when they
    lie inside the range, and trimmed (decoded, cut, encoded) when they stick
    out; samples newer than them are encoded into further chunks. Only when
    samples and chunks interleave in time is everything encoded again.
    """
    stored = list(series.chunks)
    if not stored:
        return _encode(series.timestamps, series.values)
    if not series.timestamps or series.timestamps[0] > stored[-1].max_time:
        passed = [piece for chunk in stored for piece in _trimmed(chunk, start, end)]
        return passed + _encode(series.timestamps, series.values)
    merged: dict[int, float] = {}
    for chunk in stored:
        timestamps, values = decode_chunk(chunk.data)
        merged.update((t, v) for t, v in zip(timestamps, values, strict=True) if start <= t <= end)
    merged.update(zip(series.timestamps, series.values, strict=True))
    order = sorted(merged)
    return _encode(order, [merged[t] for t in order])


def _py_encode_chunk_records(chunks: Sequence[EncodedChunk]) -> bytes:
    """The ``Chunk`` records (field 2) of a ``ChunkedSeries``, all of type XOR, written by protobuf."""
    message = types_pb2.ChunkedSeries()
    add = message.chunks.add
    for chunk in chunks:
        add(min_time_ms=chunk.min_time, max_time_ms=chunk.max_time, type=XOR, data=chunk.data)
    data: bytes = message.SerializeToString()
    return data


_EncodeChunkRecords = Callable[[Sequence[EncodedChunk]], bytes]
_c_encode_chunk_records = None if _chunks.c_codec is None else _chunks.c_codec.encode_chunk_records
encode_chunk_records: _EncodeChunkRecords
if _chunks.IMPLEMENTATION == "c" and _c_encode_chunk_records is not None:
    encode_chunk_records = _c_encode_chunk_records
else:
    encode_chunk_records = _py_encode_chunk_records


def _frames(
    query_index: int, label_records: bytes, chunks: Sequence[EncodedChunk], max_frame_bytes: int
) -> Iterator[bytes]:
    budget = max_frame_bytes - len(label_records)
    tail = _QUERY_INDEX + encode_uvarint(query_index & _UINT64_MASK) if query_index else b""
    start = 0
    while start < len(chunks):
        stop = start
        used = 0
        while stop < len(chunks) and (used < budget or used == 0):
            used += len(chunks[stop].data) + _CHUNK_OVERHEAD
            stop += 1
        records = encode_chunk_records(chunks[start:stop])
        size = encode_uvarint(len(label_records) + len(records))
        yield frame(b"".join((_SERIES, size, label_records, records, tail)))
        start = stop


def encode_series_frames(
    query_index: int,
    labels: Labels,
    chunks: Sequence[EncodedChunk],
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> Iterator[bytes]:
    """Frames for one series: chunks appended until the budget is used (may exceed it by one chunk)."""
    return _frames(query_index, encode_labels(labels), chunks, max_frame_bytes)


def _py_series_frames(
    query_index: int, label_records: bytes, chunks: Sequence[EncodedChunk], max_frame_bytes: int
) -> tuple[bytes, int]:
    frames = b"".join(_frames(query_index, label_records, chunks, max_frame_bytes))
    return frames, sum(chunk_samples(chunk.data) for chunk in chunks)


_SeriesFrames = Callable[[int, bytes, Sequence[EncodedChunk], int], tuple[bytes, int]]
series_frames: _SeriesFrames
"""``series_frames(query_index, label_records, chunks, max_frame_bytes)``: a series' frames, joined.

The frames :func:`encode_series_frames` writes for the series whose
``Label`` records are ``label_records``, in one piece, and the number of
samples in ``chunks``: what the server writes and counts for each series.
"""
if _chunks.IMPLEMENTATION == "c" and _chunks.c_codec is not None:
    series_frames = _chunks.c_codec.encode_series_frames
else:
    series_frames = _py_series_frames


def decode_frames(body: bytes) -> list[remote_pb2.ChunkedReadResponse]:
    """Split a streamed body into messages, checking every CRC (for clients and tests)."""
    messages = []
    i = 0
    while i < len(body):
        length, i = decode_uvarint(body, i)
        checksum = int.from_bytes(body[i : i + 4], "big")
        data = body[i + 4 : i + 4 + length]
        if len(data) != length or crc32c.crc32c(data) != checksum:
            raise ValueError(f"frame at byte {i} is truncated or fails its CRC-32C check")
        message = remote_pb2.ChunkedReadResponse()
        parse(message, data)
        messages.append(message)
        i += 4 + length
    return messages
