"""The frames of ``STREAMED_XOR_CHUNKS`` responses: ``uvarint(len) | CRC-32C(message), big-endian | message``.

Every frame holds one ``ChunkedReadResponse`` with one series. The CRC-32C
has one implementation, the ``crc32c`` package (hardware-accelerated where
the CPU has the instruction): :func:`frame` calls it, and so does the C
frame writer (``_wire.c``), which :mod:`remote_storage.native` picks for
:func:`series_frames` when the C code is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import crc32c

from remote_storage import native
from remote_storage.chunks import chunk_samples
from remote_storage.protocol.wire import records
from remote_storage.storage import EncodedChunk
from remote_storage.varint import decode_uvarint, encode_uvarint

__all__ = ["CHUNK_OVERHEAD", "frame", "iter_series_frames", "series_frames", "split_frames"]

#: What a chunk is taken to add to a frame when filling it: its data plus room
#: for its record's fields. Not the exact size; kept as it was so that frames
#: are cut where they always were (``CHUNK_FRAME_OVERHEAD`` in ``_wire.c``).
CHUNK_OVERHEAD = 32


def frame(message: bytes) -> bytes:
    """Wrap a serialized ``ChunkedReadResponse`` as one stream frame."""
    return b"".join((encode_uvarint(len(message)), crc32c.crc32c(message).to_bytes(4, "big"), message))


def split_frames(body: bytes) -> Iterator[bytes]:
    """The messages of a streamed body, in order, every CRC checked; ValueError on a bad frame."""
    i = 0
    while i < len(body):
        length, i = decode_uvarint(body, i)
        checksum = int.from_bytes(body[i : i + 4], "big")
        data = body[i + 4 : i + 4 + length]
        if len(data) != length or crc32c.crc32c(data) != checksum:
            raise ValueError(f"frame at byte {i} is truncated or fails its CRC-32C check")
        yield data
        i += 4 + length


def iter_series_frames(
    query_index: int, label_records: bytes, chunks: Sequence[EncodedChunk], max_frame_bytes: int
) -> Iterator[bytes]:
    """Frames for one series: chunks appended until the budget is used (may exceed it by one chunk).

    ``label_records`` are the series' ``Label`` records; every frame repeats them.
    """
    budget = max_frame_bytes - len(label_records)
    start = 0
    while start < len(chunks):
        stop = start
        used = 0
        while stop < len(chunks) and (used < budget or used == 0):
            used += len(chunks[stop].data) + CHUNK_OVERHEAD
            stop += 1
        chunk_records = records.encode_chunk_records(chunks[start:stop])
        yield frame(records.chunked_series_message(label_records, chunk_records, query_index))
        start = stop


def _py_series_frames(
    query_index: int, label_records: bytes, chunks: Sequence[EncodedChunk], max_frame_bytes: int
) -> tuple[bytes, int]:
    frames = b"".join(iter_series_frames(query_index, label_records, chunks, max_frame_bytes))
    return frames, sum(chunk_samples(chunk.data) for chunk in chunks)


_SeriesFrames = Callable[[int, bytes, Sequence[EncodedChunk], int], tuple[bytes, int]]
_c_series_frames: _SeriesFrames | None = None if native.wire is None else native.wire.encode_series_frames
series_frames: _SeriesFrames
"""``series_frames(query_index, label_records, chunks, max_frame_bytes)``: a series' frames, joined.

The frames :func:`iter_series_frames` writes, in one piece, and the number
of samples in ``chunks``: what the server writes and counts for each series.
"""
if native.IMPLEMENTATION == "c" and _c_series_frames is not None:
    series_frames = _c_series_frames
else:
    series_frames = _py_series_frames
