"""Unsigned varints (LEB128), as protobuf, snappy's length header and the XOR chunk format write them."""

from __future__ import annotations

__all__ = ["decode_uvarint", "encode_uvarint"]


def encode_uvarint(value: int) -> bytes:
    """``value`` (>= 0) in 7-bit groups, lowest first, high bit set on all but the last byte."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes, pos: int, max_bytes: int = 10) -> tuple[int, int]:
    """The varint starting at ``data[pos]`` and the position after it.

    Raises ValueError when the data ends inside it or it is longer than ``max_bytes``.
    """
    value = 0
    for index in range(max_bytes):
        if pos + index >= len(data):
            raise ValueError(f"truncated varint at byte {pos}")
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return value, pos + index + 1
    raise ValueError(f"varint longer than {max_bytes} bytes at byte {pos}")
