from __future__ import annotations

import pytest

from remote_storage.errors import BodyTooLarge, MalformedBody
from remote_storage.protocol import snappy


def test_block_format_round_trip() -> None:
    data = b"hello remote write " * 100
    block = snappy.compress(data)
    assert snappy.uncompressed_length(block) == len(data)
    assert snappy.decompress(block, 1 << 20) == data


def test_example_from_protocol_reference() -> None:
    # One literal of 32 bytes: uvarint length 0x20, literal tag 0x7c.
    payload = bytes(range(32))
    assert snappy.compress(payload)[:2] == b"\x20\x7c"


def test_declared_size_is_checked_before_decompressing() -> None:
    # Claims 2**31 bytes; must be refused without trying to allocate them.
    claim = bytes([0x80, 0x80, 0x80, 0x80, 0x08]) + b"\x00" * 8
    with pytest.raises(BodyTooLarge, match="exceeds the limit of 1024 bytes") as info:
        snappy.decompress(claim, 1024)
    assert info.value.http_status == 413


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xff\xff\xff\xff\xff", b"\x10garbage", b"not snappy at all, not even close"],
)
def test_corrupt_blocks_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        snappy.decompress(body, 1 << 20)
    assert info.value.http_status == 400


def test_framed_format_gets_a_helpful_message() -> None:
    framed = b"\xff\x06\x00\x00sNaPpY" + b"\x00" * 10
    with pytest.raises(MalformedBody, match="framed"):
        snappy.decompress(framed, 1 << 20)
