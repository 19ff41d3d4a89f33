"""``STREAMED_XOR_CHUNKS`` remote-read responses: frames of ``ChunkedReadResponse``.

Each frame is ``uvarint(len) | CRC-32C(message), big-endian | message`` and
holds exactly one series of one query (Prometheus' client reads only the
first series of a frame). A series whose chunks do not fit the frame budget
(``max_frame_bytes`` minus its labels) continues in further frames with the
same labels. Float samples travel as XOR chunks of at most 120 samples;
native histograms are not sent in this mode (their chunk encodings are not
implemented), so readers that need them should ask for ``SAMPLES``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

import crc32c

from remote_storage.chunks import decode_chunk, split_into_chunks
from remote_storage.protocol.messages import parse
from remote_storage.protocol.pb import remote_pb2, types_pb2
from remote_storage.storage import EncodedChunk, Labels, TimeSeries
from remote_storage.varint import decode_uvarint, encode_uvarint

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_FRAME_BYTES",
    "decode_frames",
    "encode_series_frames",
    "frame",
]

CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
DEFAULT_MAX_FRAME_BYTES = 1_048_576
XOR = types_pb2.Chunk.XOR


def frame(message: bytes) -> bytes:
    """Wrap a serialized ``ChunkedReadResponse`` as one stream frame."""
    return encode_uvarint(len(message)) + crc32c.crc32c(message).to_bytes(4, "big") + message


def _encode(timestamps: Sequence[int], values: Sequence[float]) -> list[EncodedChunk]:
    return [EncodedChunk(c.min_time, c.max_time, c.data) for c in split_into_chunks(timestamps, values)]


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


def encode_series_frames(
    query_index: int,
    labels: Labels,
    chunks: Sequence[EncodedChunk],
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> Iterator[bytes]:
    """Frames for one series: chunks appended until the budget is used (may exceed it by one chunk)."""
    template = remote_pb2.ChunkedReadResponse(query_index=query_index)
    series_template = template.chunked_series.add()
    for name, value in labels:
        series_template.labels.add(name=name, value=value)
    budget = max_frame_bytes - series_template.ByteSize()
    start = 0
    while start < len(chunks):
        message = remote_pb2.ChunkedReadResponse()
        message.CopyFrom(template)
        out = message.chunked_series[0]
        used = 0
        while start < len(chunks) and (used < budget or used == 0):
            chunk = chunks[start]
            out.chunks.add(min_time_ms=chunk.min_time, max_time_ms=chunk.max_time, type=XOR, data=chunk.data)
            used += len(chunk.data) + 32
            start += 1
        yield frame(message.SerializeToString())


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
