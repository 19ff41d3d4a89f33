"""An independent XOR chunk decoder: PROTOCOL.md section 5 read literally, bit by bit."""

from __future__ import annotations

__all__ = ["ReferenceDecodeError", "int64", "reference_decode", "reference_value_bits"]


class ReferenceDecodeError(Exception):
    pass


def int64(x: int) -> int:
    return (x + (1 << 63)) % (1 << 64) - (1 << 63)


def reference_decode(data: bytes) -> tuple[list[int], list[int]]:
    """PROTOCOL.md section 5 read literally: one bit at a time, Go's uint64/int64 wrapping."""
    timestamps, values, _ = _decode(data)
    return timestamps, values


def reference_value_bits(data: bytes) -> int:
    """Bits the chunk spends on the values after the first: control bits, windows and payloads."""
    return _decode(data)[2]


def _decode(data: bytes) -> tuple[list[int], list[int], int]:
    position = 0

    def bit() -> int:
        nonlocal position
        if position >= 8 * len(data):
            raise ReferenceDecodeError("truncated")
        value = (data[position // 8] >> (7 - position % 8)) & 1
        position += 1
        return value

    def read(n: int) -> int:
        value = 0
        for _ in range(n):
            value = value * 2 + bit()
        return value

    def uvarint() -> int:
        value = 0
        for i in range(10):
            byte = read(8)
            if i == 9 and byte > 1:
                raise ReferenceDecodeError("overflow")
            value += (byte % 128) << (7 * i)
            if byte < 128:
                return value
        raise ReferenceDecodeError("overflow")

    count = read(16)
    timestamps: list[int] = []
    values: list[int] = []
    t = delta = v = leading = trailing = value_bits = 0
    for i in range(count):
        if i == 0:
            zigzag = uvarint()
            t = zigzag // 2 if zigzag % 2 == 0 else -(zigzag // 2) - 1
            v = read(64)
        else:
            if i == 1:
                delta = uvarint()
            else:
                ones = 0
                while ones < 4 and bit() == 1:
                    ones += 1
                width = [0, 14, 17, 20, 64][ones]
                field = read(width)
                if width == 64:
                    dod = int64(field)
                elif width and field > 2 ** (width - 1):
                    dod = field - 2**width
                else:
                    dod = field
                delta = (delta + dod) % 2**64
            t = int64(t + delta)
            before = position
            if bit() == 1:
                if bit() == 1:
                    leading = read(5)
                    significant = read(6) or 64
                    trailing = 64 - leading - significant
                    if trailing < 0:
                        raise ReferenceDecodeError("window wider than 64 bits")
                v ^= read(64 - leading - trailing) << trailing
            value_bits += position - before
        timestamps.append(t)
        values.append(v)
    return timestamps, values, value_bits
