"""The remote write 1.0 scanner gives what the protobuf runtime gives, or steps aside."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage.protocol.pb import remote_pb2
from remote_storage.protocol.v1_scan import scan
from remote_storage.protocol.write import _decode_v1_messages, decode_v1
from remote_storage.storage import float_bits

names = st.sampled_from(["__name__", "job", "instance", "a", "ünï", "x" * 200])
values = st.text(min_size=0, max_size=30)
label_sets = st.dictionaries(names, values, min_size=1, max_size=5).map(
    lambda d: {"__name__": "m", **d} if not d.get("__name__") else d
)
timestamps = st.integers(min_value=-(2**63), max_value=2**63 - 1)
float_patterns = st.integers(min_value=0, max_value=2**64 - 1).map(
    lambda b: struct.unpack("<d", struct.pack("<Q", b))[0]
)


@st.composite
def write_requests(draw: st.DrawFn) -> bytes:
    message = remote_pb2.WriteRequest()
    pool = draw(st.lists(label_sets, min_size=1, max_size=4))
    for _ in range(draw(st.integers(0, 12))):
        entry = message.timeseries.add()
        for name, value in sorted(draw(st.sampled_from(pool)).items()):
            entry.labels.add(name=name, value=value)
        for _ in range(draw(st.integers(0, 2))):
            entry.samples.add(value=draw(float_patterns), timestamp=draw(timestamps))
    if draw(st.booleans()):
        message.metadata.add(type=1, metric_family_name="m", help="h", unit="")
    return message.SerializeToString()


def comparable(payload: bytes, decode):  # type: ignore[no-untyped-def]
    request = decode(payload)
    merged: dict[object, list[tuple[int, int]]] = {}
    for s in request.series:
        merged.setdefault(s.labels, []).extend((t, float_bits(v)) for t, v in s.samples())
    return merged, request.metadata


@settings(max_examples=300, deadline=None)
@given(write_requests())
def test_scanner_and_runtime_agree(payload: bytes) -> None:
    assert scan(payload) is not None  # the ordinary shape takes the fast path
    try:
        expected = comparable(payload, _decode_v1_messages)
    except Exception as exc:  # invalid label sets: both must refuse
        try:
            decode_v1(payload)
        except type(exc):
            return
        raise AssertionError(f"the scanner accepted what the runtime refused: {exc}") from None
    assert comparable(payload, decode_v1) == expected


@settings(max_examples=300, deadline=None)
@given(write_requests(), st.data())
def test_damaged_bodies_never_decode_differently(payload: bytes, data: st.DataObject) -> None:
    if not payload:
        return
    cut = data.draw(st.integers(0, len(payload) - 1))
    flip = data.draw(st.integers(0, 255))
    damaged = payload[:cut] + bytes([payload[cut] ^ flip]) + payload[cut + 1 :]
    try:
        expected = comparable(damaged, _decode_v1_messages)
    except Exception:
        expected = None
    try:
        got = comparable(damaged, decode_v1)
    except Exception:
        got = None
    assert got == expected  # both refuse, or both give the same data


def test_other_shapes_fall_back_to_the_runtime() -> None:
    message = remote_pb2.WriteRequest()
    entry = message.timeseries.add()
    entry.labels.add(name="__name__", value="m")
    entry.exemplars.add(value=1.0, timestamp=5)
    assert scan(message.SerializeToString()) is None
    [series] = decode_v1(message.SerializeToString()).series
    assert series.exemplars[0].timestamp == 5
    # a sample whose fields come in the other order is still scanned
    label = b"\x0a\x08__name__\x12\x01m"
    sample = b"\x10\xe8\x07\x09" + struct.pack("<d", 1.0)  # timestamp before value
    entry = b"\x0a" + bytes([len(label)]) + label + b"\x12" + bytes([len(sample)]) + sample
    body = b"\x0a" + bytes([len(entry)]) + entry
    assert scan(body) is not None
    request = decode_v1(body)
    assert [list(s.samples()) for s in request.series] == [[(1000, 1.0)]]
