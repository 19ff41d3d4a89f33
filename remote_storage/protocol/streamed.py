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
objects, by the wire layer (:mod:`remote_storage.protocol.wire.frames`): a
series' label records are encoded once and every frame of the series reuses
them; each chunk becomes its ``Chunk`` record around the chunk bytes as they
are. The bytes are those protobuf would write for the same
``ChunkedReadResponse`` (the tests compare them).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

from remote_storage.chunks import SAMPLES_PER_CHUNK, decode_chunk, encode_chunk, split_into_chunks
from remote_storage.protocol.messages import parse
from remote_storage.protocol.pb import remote_pb2
from remote_storage.protocol.wire import frames, records
from remote_storage.storage import EncodedChunk, Labels, TimeSeries

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_FRAME_BYTES",
    "chunks_of",
    "decode_frames",
    "encode_series_frames",
    "series_frames",
]

CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
DEFAULT_MAX_FRAME_BYTES = 1_048_576


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


def encode_series_frames(
    query_index: int,
    labels: Labels,
    chunks: Sequence[EncodedChunk],
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> Iterator[bytes]:
    """Frames for one series: chunks appended until the budget is used (may exceed it by one chunk)."""
    return frames.iter_series_frames(query_index, records.encode_labels(labels), chunks, max_frame_bytes)


def series_frames(
    query_index: int, label_records: bytes, chunks: Sequence[EncodedChunk], max_frame_bytes: int
) -> tuple[bytes, int]:
    """The frames of a series whose ``Label`` records are ``label_records``, joined, and its sample count.

    What the server writes and counts for each series: the frames
    :func:`encode_series_frames` gives, in one piece.
    """
    return frames.series_frames(query_index, label_records, chunks, max_frame_bytes)


def decode_frames(body: bytes) -> list[remote_pb2.ChunkedReadResponse]:
    """Split a streamed body into messages, checking every CRC (for clients and tests)."""
    messages = []
    for data in frames.split_frames(body):
        message = remote_pb2.ChunkedReadResponse()
        parse(message, data)
        messages.append(message)
    return messages
