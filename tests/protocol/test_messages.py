"""Fields sent with a wire type their declaration does not allow are refused, not read as defaults."""

from __future__ import annotations

import re
import struct

import pytest

from remote_storage.errors import MalformedBody
from remote_storage.protocol.pb import remote_pb2, write_v2_pb2
from remote_storage.protocol.read import decode_read_request
from remote_storage.protocol.write import decode_v1, decode_v2


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire_type) + payload


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def nested(number: int, payload: bytes) -> bytes:
    return field(number, 2, varint(len(payload)) + payload)


def label(name: str, value: str) -> bytes:
    return nested(1, nested(1, name.encode()) + nested(2, value.encode()))


LABELS = label("__name__", "up") + label("job", "a")
VALUE = field(1, 1, struct.pack("<d", 2.5))
TIMESTAMP = field(2, 0, varint(5000))


def v1(sample: bytes, extra: bytes = b"") -> bytes:
    return nested(1, LABELS + nested(2, sample) + extra)


@pytest.mark.parametrize(
    ("sample", "what"),
    [
        (field(1, 0, varint(5)) + TIMESTAMP, "'value' (number 1) was sent with wire type varint"),
        (
            VALUE + field(2, 1, struct.pack("<q", 5000)),
            "'timestamp' (number 2) was sent with wire type 64-bit",
        ),
        (field(1, 5, b"\0\0\0\0") + TIMESTAMP, "'value' (number 1) was sent with wire type 32-bit"),
    ],
)
def test_v1_sample_with_wrong_wire_type_is_refused(sample: bytes, what: str) -> None:
    with pytest.raises(MalformedBody, match=re.escape(what)) as info:
        decode_v1(v1(sample))
    assert info.value.http_status == 400
    assert "prometheus.Sample" in str(info.value)


def test_v1_labels_with_wrong_wire_type_are_refused() -> None:
    body = nested(1, field(1, 0, varint(7)) + nested(2, VALUE + TIMESTAMP))
    with pytest.raises(MalformedBody, match="'labels' .number 1. was sent with wire type varint"):
        decode_v1(body)


def test_unknown_fields_are_ignored() -> None:
    # a newer sender's field 15 in the sample and field 9 in the request: not ours to refuse
    body = v1(VALUE + TIMESTAMP + field(15, 0, varint(1))) + field(9, 2, b"\x01x")
    [series] = decode_v1(body).series
    assert list(series.timestamps) == [5000]
    assert list(series.values) == [2.5]


def test_non_canonical_encodings_of_known_fields_are_accepted() -> None:
    # explicit default values and the fields of a sample in reverse order
    explicit = field(2, 0, varint(0)) + field(1, 1, struct.pack("<d", 0.0))
    [series] = decode_v1(v1(explicit)).series
    assert list(series.values) == [0.0]
    # remote write 2.0 with labels_refs not packed: a valid encoding of a repeated uint32
    message = write_v2_pb2.Request()
    message.symbols.extend(["", "__name__", "up"])
    entry = message.timeseries.add()
    entry.samples.add(value=1.0, timestamp=7)
    packed = message.SerializeToString()
    refs = b"".join(field(1, 0, varint(ref)) for ref in (1, 2))
    symbols, entry_bytes = packed.split(b"\x2a", 1)[0], entry.SerializeToString()
    body = symbols + nested(5, refs + entry_bytes)
    [decoded] = decode_v2(body).series
    assert decoded.labels.metric_name == "up"


def test_v2_sample_with_wrong_wire_type_is_refused() -> None:
    message = write_v2_pb2.Request()
    message.symbols.extend(["", "__name__", "up"])
    entry = message.timeseries.add()
    entry.labels_refs.extend([1, 2])
    body = message.SerializeToString()
    entry_bytes = entry.SerializeToString() + nested(2, field(1, 0, varint(3)) + field(2, 0, varint(9)))
    body = body.split(b"\x2a", 1)[0] + nested(5, entry_bytes)
    with pytest.raises(MalformedBody, match="io.prometheus.write.v2.Sample protobuf: field 'value'"):
        decode_v2(body)


def test_read_query_with_wrong_wire_type_is_refused() -> None:
    # start_timestamp_ms (field 1) as 64-bit instead of varint: the query would start at 0
    query = field(1, 1, struct.pack("<q", 1000)) + field(2, 0, varint(2000))
    with pytest.raises(MalformedBody, match="'start_timestamp_ms'"):
        decode_read_request(nested(1, query))


def test_canonical_bodies_pass_unchanged() -> None:
    message = remote_pb2.WriteRequest()
    entry = message.timeseries.add()
    entry.labels.add(name="__name__", value="up")
    entry.samples.add(value=1.0, timestamp=1)
    entry.exemplars.add(value=2.0, timestamp=1)  # not the scanner's shape: the runtime path
    [series] = decode_v1(message.SerializeToString()).series
    assert list(series.values) == [1.0]
