from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remote_storage.varint import decode_uvarint, encode_uvarint


def test_known_encodings() -> None:
    assert encode_uvarint(0) == b"\x00"
    assert encode_uvarint(127) == b"\x7f"
    assert encode_uvarint(128) == b"\x80\x01"
    assert encode_uvarint(1000) == b"\xe8\x07"  # as in PROTOCOL.md's examples
    assert encode_uvarint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=4))
def test_round_trip(value: int, prefix: bytes) -> None:
    data = prefix + encode_uvarint(value) + b"\xaa"
    assert decode_uvarint(data, len(prefix)) == (value, len(data) - 1)


def test_errors() -> None:
    with pytest.raises(ValueError, match="truncated"):
        decode_uvarint(b"\x80\x80", 0)
    with pytest.raises(ValueError, match="longer than 2 bytes"):
        decode_uvarint(b"\x80\x80\x01", 0, max_bytes=2)
