"""Snappy block format (never the framed format), with size checks first.

Remote write and remote read bodies are one snappy *block*: a uvarint with the
uncompressed length, then the compressed elements. The length is read and
checked against the limit before anything is decompressed, so a small body
that claims gigabytes is refused without allocating them.
"""

from __future__ import annotations

import snappy as _snappy

from remote_storage.errors import BodyTooLarge, MalformedBody

__all__ = ["compress", "decompress", "uncompressed_length"]

_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"


def uncompressed_length(data: bytes) -> int:
    """The length a snappy block declares in its uvarint header."""
    result = 0
    shift = 0
    for index, byte in enumerate(data[:10]):
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if index == 4 and byte > 0x0F:  # snappy lengths are uint32
                break
            return result
        shift += 7
    raise MalformedBody("invalid snappy block", "the length header is truncated or over 32 bits")


def decompress(data: bytes, limit: int, setting: str = "--max-request-bytes") -> bytes:
    """Decompress a snappy block whose declared size is at most ``limit`` bytes."""
    if data.startswith(_FRAMED_MAGIC):
        raise MalformedBody(
            "invalid snappy block",
            "the body uses the snappy framed (stream) format; remote write and read use the block format",
        )
    size = uncompressed_length(data)
    if size > limit:
        raise BodyTooLarge("decompressed body", size, limit, setting)
    try:
        result: bytes = _snappy.uncompress(data)
    except Exception as exc:  # python-snappy raises several types for corrupt input
        raise MalformedBody("invalid snappy block", str(exc) or type(exc).__name__) from None
    return result


def compress(data: bytes) -> bytes:
    """Compress ``data`` into one snappy block."""
    result: bytes = _snappy.compress(data)
    return result
