"""A snappy block with holes: compress the fixed bytes of a body once, fill in the rest per request.

A request body is mostly fixed bytes (labels) with small variable parts
(sample values and timestamps) at known places. :func:`splice` compresses
the fixed bytes with snappy once and rewrites the compressed elements so
that an uncompressed *literal* of ``slot`` bytes stands at every hole:
copies are re-aimed (their offsets grow by the holes between source and
destination) and split where a hole falls inside them. Writing the
chunks with any slot contents in between gives a valid snappy block of
the whole body, without compressing anything again::

    chunks = splice([b"head", b"middle", b"tail"], slot=2)
    body = chunks[0] + b"AB" + chunks[1] + b"CD" + chunks[2]
    assert snappy.decompress(body, 1 << 20) == b"headABmiddleCDtail"

When holes share their last bytes (the timestamp of the series of one
scrape target, say), ``tail_sources`` lets a hole copy its last ``tail``
bytes from an earlier hole, so only the rest is written per request.

Element formats (block format only): tag ``& 3`` is 0 for a literal
(length - 1 in the upper six bits, or in 1 to 4 little-endian bytes after
tags 60 to 63), 1 for a copy of 4 to 11 bytes with an 11-bit offset, 2 for
a copy of 1 to 64 bytes with a 16-bit offset, 3 for the same with a
32-bit offset.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence

from remote_storage.protocol import snappy
from remote_storage.varint import encode_uvarint as uvarint

__all__ = ["splice"]

_MAX_COPY = 64


def _elements(block: bytes) -> Iterator[tuple[int, int, int]]:
    """``(length, offset, start)`` per element: offset 0 for a literal whose bytes start at ``start``."""
    i = 0
    while block[i] & 0x80:  # the uncompressed length
        i += 1
    i += 1
    end = len(block)
    while i < end:
        tag = block[i]
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length < 60:
                i += 1
            else:
                extra = length - 59
                length = int.from_bytes(block[i + 1 : i + 1 + extra], "little")
                i += 1 + extra
            yield length + 1, 0, i
            i += length + 1
        elif kind == 1:
            yield 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | block[i + 1], 0
            i += 2
        elif kind == 2:
            yield (tag >> 2) + 1, block[i + 1] | (block[i + 2] << 8), 0
            i += 3
        else:
            yield (tag >> 2) + 1, int.from_bytes(block[i + 1 : i + 5], "little"), 0
            i += 5


def _literal(data: bytes, out: bytearray) -> None:
    length = len(data) - 1
    if length < 60:
        out.append(length << 2)
    else:
        size = (length.bit_length() + 7) // 8
        out.append((59 + size) << 2)
        out += length.to_bytes(size, "little")
    out += data


def _copy(offset: int, length: int, out: bytearray) -> None:
    while length > 0:
        part = min(length, _MAX_COPY)
        if 4 <= part <= 11 and offset < 2048:
            out += bytes((((offset >> 8) << 5) | ((part - 4) << 2) | 1, offset & 0xFF))
        elif offset < 1 << 16:
            out += bytes((((part - 1) << 2) | 2, offset & 0xFF, offset >> 8))
        else:
            out.append(((part - 1) << 2) | 3)
            out += offset.to_bytes(4, "little")
        length -= part


def splice(
    pieces: Sequence[bytes], slot: int, *, tail: int = 0, tail_sources: Sequence[int] = ()
) -> list[bytes]:
    """Compressed chunks to interleave with ``len(pieces) - 1`` slots of ``slot`` bytes each.

    The first chunk starts with the block's length header, so
    ``chunks[0] + s1 + chunks[1] + ... + s_n + chunks[n]`` is the snappy
    block of ``pieces[0] + s1 + pieces[1] + ... + s_n + pieces[n]`` for any
    slot contents ``s1 .. s_n`` of ``slot`` bytes (1 to 60).

    If ``tail_sources[j]`` is the number of an earlier slot (else -1), slot
    ``j`` ends with the same ``tail`` bytes as that one: the chunks copy
    them, and only the first ``slot - tail`` bytes of slot ``j`` are written.
    """
    if not 1 <= slot <= 60:
        raise ValueError(f"slot must be 1 to 60 bytes, got {slot}")
    if not pieces:
        raise ValueError("splice needs at least one piece")
    if tail_sources and not (0 < tail < slot and len(tail_sources) == len(pieces) - 1):
        raise ValueError("tail_sources needs one entry per slot and 0 < tail < slot")
    if any(source >= number for number, source in enumerate(tail_sources)):
        raise ValueError("a slot can only repeat the tail of an earlier slot")
    fixed = b"".join(pieces)
    holes = []  # position in ``fixed`` before which each slot stands
    position = 0
    for piece in pieces[:-1]:
        position += len(piece)
        holes.append(position)
    count = len(holes)
    holes.append(len(fixed) + 1)  # a sentinel no position reaches
    block = snappy.compress(fixed)
    chunks: list[bytes] = []
    out = bytearray(uvarint(len(fixed) + slot * count))
    nxt = 0  # the next hole to write

    def hole() -> None:
        nonlocal out, nxt
        source = tail_sources[nxt] if tail_sources else -1
        written = slot if source < 0 else slot - tail
        out.append((written - 1) << 2)  # a literal of the bytes written into the slot
        chunks.append(bytes(out))
        out = bytearray()
        if source >= 0:  # the tail is at the same place in both slots
            _copy(holes[nxt] + slot * nxt - holes[source] - slot * source, tail, out)
        nxt += 1

    # In the output, a byte at ``p`` in ``fixed`` moves by ``slot`` times the holes at or before ``p``.
    x = 0  # position in ``fixed`` of the element's first byte
    for length, offset, start in _elements(block):
        end = x + length
        if offset == 0:
            a = x
            while holes[nxt] < end:
                if holes[nxt] > a:
                    _literal(block[start + a - x : start + holes[nxt] - x], out)
                    a = holes[nxt]
                hole()
            if end > a:
                _literal(block[start + a - x : start + end - x], out)
        elif holes[nxt] >= end and holes[before := bisect_right(holes, x - offset)] >= end - offset:
            _copy(offset + slot * (nxt - before), length, out)  # the common case: no hole in either range
        else:
            a = x
            while a < end:
                while holes[nxt] == a:
                    hole()
                b = min(end, holes[nxt])
                before = bisect_right(holes, a - offset)
                b = min(b, holes[before] + offset)
                _copy(offset + slot * (nxt - before), b - a, out)
                a = b
        x = end
    while nxt < count:
        hole()
    chunks.append(bytes(out))
    return chunks
