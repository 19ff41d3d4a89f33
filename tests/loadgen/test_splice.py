"""Splicing slots into a snappy block: any slot contents give the block of the whole body."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage.loadgen.splice import splice
from remote_storage.protocol import snappy

# Few distinct bytes and repeated runs, so that snappy copies (and copies across slots) abound.
_piece = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=6), st.integers(1, 40)),
    st.lists(st.sampled_from([b"\x00", b"ab", b"abcd", b"label", b"\x0a\x08"]), max_size=30).map(b"".join),
)


def _fill(chunks: list[bytes], written: list[bytes]) -> bytes:
    body = bytearray(chunks[0])
    for data, chunk in zip(written, chunks[1:], strict=True):
        body += data + chunk
    return bytes(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(_piece, min_size=1, max_size=30), st.integers(1, 20), st.data())
def test_any_slot_contents_decompress_to_the_body(
    pieces: list[bytes], slot: int, data: st.DataObject
) -> None:
    holes = len(pieces) - 1
    contents = data.draw(st.lists(st.binary(min_size=slot, max_size=slot), min_size=holes, max_size=holes))
    body = _fill(splice(pieces, slot), contents)
    expected = pieces[0] + b"".join(c + p for c, p in zip(contents, pieces[1:], strict=True))
    assert snappy.decompress(body, 1 << 24) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(_piece, min_size=2, max_size=30), st.integers(2, 20), st.data())
def test_slots_can_repeat_the_tail_of_an_earlier_slot(
    pieces: list[bytes], slot: int, data: st.DataObject
) -> None:
    holes = len(pieces) - 1
    tail = data.draw(st.integers(1, slot - 1))
    sources = [data.draw(st.integers(-1, j - 1)) for j in range(holes)]
    contents: list[bytes] = []
    written: list[bytes] = []
    for source in sources:
        head = data.draw(st.binary(min_size=slot - tail, max_size=slot - tail))
        if source < 0:
            contents.append(head + data.draw(st.binary(min_size=tail, max_size=tail)))
            written.append(contents[-1])
        else:
            contents.append(head + contents[source][-tail:])
            written.append(head)
    body = _fill(splice(pieces, slot, tail=tail, tail_sources=sources), written)
    expected = pieces[0] + b"".join(c + p for c, p in zip(contents, pieces[1:], strict=True))
    assert snappy.decompress(body, 1 << 24) == expected


def test_long_bodies_need_long_copy_offsets() -> None:
    label = b"\x0a\x1e\x0a\x08__name__\x12\x12node_memory_bytes_"
    pieces = [label + bytes([i % 7]) * 300 for i in range(400)]  # copies reach back past 64 KiB
    contents = [bytes([i % 251]) * 15 for i in range(399)]
    body = _fill(splice(pieces, 15), contents)
    expected = pieces[0] + b"".join(c + p for c, p in zip(contents, pieces[1:], strict=True))
    assert snappy.decompress(body, 1 << 24) == expected


@pytest.mark.parametrize(
    ("slot", "tail", "sources", "message"),
    [
        (0, 0, [], "slot must be"),
        (61, 0, [], "slot must be"),
        (8, 8, [-1], "0 < tail < slot"),
        (8, 2, [0], "earlier slot"),
    ],
)
def test_bad_arguments(slot: int, tail: int, sources: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        splice([b"a", b"b"], slot, tail=tail, tail_sources=sources)
