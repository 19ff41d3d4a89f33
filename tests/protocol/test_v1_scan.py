"""The remote write 1.0 scanner gives what the protobuf runtime gives, or steps aside.

Both implementations, the C extension and the pure-Python scanner, run every
test here; a differential test checks that they agree on every body, valid,
damaged or odd.
"""

from __future__ import annotations

import gc
import os
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage import native
from remote_storage.protocol import write
from remote_storage.protocol.pb import remote_pb2
from remote_storage.protocol.wire import v1_scan
from remote_storage.protocol.wire.v1_scan import Columns, Scanned, _c_columns, _c_scan, _py_columns, _py_scan
from remote_storage.protocol.write import _decode_v1_messages, decode_v1
from remote_storage.storage import MetricMetadata, MetricType, float_bits
from tests.support.wire import series

Scan = Callable[[bytes], Scanned | None]

needs_c = pytest.mark.skipif(
    _c_scan is None,
    reason="the C extension remote_storage.protocol.wire._v1scan is not built (no C compiler at install)",
)


def c_scan(body: bytes) -> Scanned | None:
    assert _c_scan is not None
    return _c_scan(body)


def c_columns(body: bytes) -> Columns | None:
    assert _c_columns is not None
    return _c_columns(body)


def no_columns(body: bytes) -> None:
    return None


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("python"),
        pytest.param("python, dict scan only"),
        pytest.param("c", marks=needs_c),
        pytest.param("c, dict scan only", marks=needs_c),
    ],
)
def scanner(request: pytest.FixtureRequest) -> Iterator[Scan]:
    """Each implementation in turn, also as the one decode_v1 uses (with or without its columns scan)."""
    python = request.param.startswith("python")
    chosen = _py_scan if python else c_scan
    chosen_columns = no_columns if "only" in request.param else _py_columns if python else c_columns
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(write, "scan", chosen)
        patch.setattr(write, "columns", chosen_columns)
        yield chosen


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
def test_scanner_and_runtime_agree(scanner: Scan, payload: bytes) -> None:
    assert scanner(payload) is not None  # the ordinary shape takes the fast path
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
def test_damaged_bodies_never_decode_differently(scanner: Scan, payload: bytes, data: st.DataObject) -> None:
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


def test_other_shapes_fall_back_to_the_runtime(scanner: Scan) -> None:
    message = remote_pb2.WriteRequest()
    entry = message.timeseries.add()
    entry.labels.add(name="__name__", value="m")
    entry.exemplars.add(value=1.0, timestamp=5)
    assert scanner(message.SerializeToString()) is None
    [series] = decode_v1(message.SerializeToString()).series
    assert series.exemplars[0].timestamp == 5
    # a sample whose fields come in the other order is still scanned
    label = b"\x0a\x08__name__\x12\x01m"
    sample = b"\x10\xe8\x07\x09" + struct.pack("<d", 1.0)  # timestamp before value
    entry = b"\x0a" + bytes([len(label)]) + label + b"\x12" + bytes([len(sample)]) + sample
    body = b"\x0a" + bytes([len(entry)]) + entry
    assert scanner(body) is not None
    request = decode_v1(body)
    assert [list(s.samples()) for s in request.series] == [[(1000, 1.0)]]


# Hand-made wire bytes, to reach the varint limits that encoders never produce.


def varint(value: int, padding: int = 0) -> bytes:
    """``value`` as a base-128 varint, over-long by ``padding`` zero groups (still valid protobuf)."""
    groups = []
    while True:
        groups.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    groups += [0] * padding
    return bytes([group | 0x80 for group in groups[:-1]] + [groups[-1]])


def record(tag: int, content: bytes, padding: int = 0) -> bytes:
    return bytes([tag]) + varint(len(content), padding) + content


LABEL = record(0x0A, b"\x0a\x08__name__\x12\x02up")


def one_sample(*fields: bytes, label: bytes = LABEL) -> bytes:
    return record(0x0A, label + record(0x12, b"".join(fields)))


def outcome(scanned: Scanned | None) -> object:
    """All a scanner returned, types included, floats as bits (NaN payloads, -0.0)."""
    if scanned is None:
        return None
    series = [
        (
            type(key),
            key,
            type(entry),
            [(type(t), t) for t in entry[0]],
            [(type(v), float_bits(v)) for v in entry[1]],
        )
        for key, entry in scanned.series.items()
    ]
    return series, [(type(raw), raw) for raw in scanned.metadata]


def columns_outcome(found: Columns | None) -> object:
    """All a columns scan returned, types included, values as bits."""
    if found is None:
        return None
    return (
        [(type(key), key) for key in found.keys],
        (type(found.timestamps), found.timestamps),
        (type(found.values), found.values),
        [(type(raw), raw) for raw in found.metadata],
    )


def only_sample(scanned: Scanned | None) -> tuple[int, int]:
    assert scanned is not None
    [(timestamps, values)] = scanned.series.values()
    [timestamp], [value] = timestamps, values
    return timestamp, float_bits(value)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (varint(1000), 1000),
        (varint(1000, padding=8), 1000),  # ten bytes
        (varint(2**63 - 1), 2**63 - 1),
        (varint(2**63), -(2**63)),  # int64 two's complement
        (varint(2**64 - 1), -1),
        (varint(2**64), None),  # tenth byte 2: 65 bits
        (varint(2**70 - 1), None),
        (varint(1000, padding=9), None),  # eleven bytes
        (b"\xe8", None),  # runs past the sample
    ],
)
def test_timestamp_varints(scanner: Scan, encoded: bytes, expected: int | None) -> None:
    scanned = scanner(one_sample(b"\x10" + encoded))
    if expected is None:
        assert scanned is None
    else:
        assert only_sample(scanned) == (expected, 0)


def test_a_later_timestamp_replaces_one_too_wide(scanner: Scan) -> None:
    wide, fine = b"\x10" + varint(2**64), b"\x10" + varint(7)
    assert only_sample(scanner(one_sample(wide, fine))) == (7, 0)
    assert scanner(one_sample(fine, wide)) is None


@pytest.mark.parametrize("padding", [0, 1, 5])
def test_length_varints_of_up_to_six_bytes(scanner: Scan, padding: int) -> None:
    label = record(0x0A, b"\x0a\x08__name__\x12\x02up", padding)
    body = record(0x0A, label + record(0x12, b"\x10\x05"), padding)
    scanned = scanner(body + record(0x1A, b"meta", padding))
    assert scanned is not None
    assert list(scanned.series) == [label]
    assert scanned.metadata == [b"meta"]
    assert scanner(record(0x0A, label + record(0x12, b"\x10\x05"), 6)) is None  # seven bytes
    assert scanner(record(0x0A, record(0x0A, b"\x0a\x01a", 6))) is None
    assert scanner(record(0x12, b"", padding)) is None  # another top-level field


@pytest.mark.parametrize(
    "length",
    [
        varint(2**42 - 1),  # six bytes: read, then larger than the body
        varint(2**35),
        b"\xff\xff\xff\xff\xff\xff\x01",  # seven bytes
        b"\xff" * 12,
    ],
)
def test_huge_lengths_are_refused(scanner: Scan, length: bytes) -> None:
    assert scanner(b"\x0a" + length + b"\x00" * 16) is None
    assert scanner(record(0x0A, b"\x0a" + length + b"\x00" * 16)) is None
    assert scanner(record(0x0A, LABEL + b"\x12" + length + b"\x00" * 16)) is None


@pytest.mark.parametrize("pattern", [0x7FF0000000000001, 0xFFF8000000000123, 0x7FF0000000000002, 1 << 63])
def test_value_bits_are_kept(scanner: Scan, pattern: int) -> None:
    value = b"\x09" + struct.pack("<Q", pattern)
    assert only_sample(scanner(one_sample(value, b"\x10\x01"))) == (1, pattern)


def test_any_bytes_like_body(scanner: Scan) -> None:
    body = one_sample(b"\x10\x01") + one_sample(b"\x10\x02") + record(0x1A, b"meta")
    expected = outcome(scanner(body))
    for view in (bytearray(body), memoryview(body), memoryview(b"??" + body)[2:]):
        assert outcome(scanner(view)) == expected  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scanner("text")  # type: ignore[arg-type]
    with pytest.raises((TypeError, BufferError)):  # not contiguous
        scanner(memoryview(body)[::2])  # type: ignore[arg-type]


def test_empty_body_and_empty_entries(scanner: Scan) -> None:
    scanned = scanner(b"")
    assert scanned is not None and scanned.series == {} and scanned.metadata == []
    # an entry without samples, then one without labels whose sample has no fields
    scanned = scanner(b"\x0a\x00" + record(0x0A, record(0x12, b"")))
    assert outcome(scanned) == ([(bytes, b"", tuple, [(int, 0)], [(float, 0)])], [])


# The two implementations side by side.


timestamp_values = st.one_of(
    st.integers(0, 2**70 - 1),
    st.sampled_from([0, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, 2**70 - 1]),
)
paddings = st.sampled_from([0, 0, 0, 0, 1, 5, 6, 9, 10])
length_errors = st.sampled_from([0, 0, 0, 0, 0, 0, 1, -1, 3])


@st.composite
def records(draw: st.DrawFn, tag: int, content: bytes) -> bytes:
    length = max(0, len(content) + draw(length_errors))
    return bytes([tag]) + varint(length, draw(paddings)) + content


@st.composite
def sample_fields(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["value", "value", "timestamp", "timestamp", "other"]))
    if kind == "value":
        return b"\x09" + draw(st.binary(min_size=8, max_size=8))
    if kind == "timestamp":
        return b"\x10" + varint(draw(timestamp_values), draw(paddings))
    return draw(st.binary(min_size=1, max_size=3))


@st.composite
def odd_bodies(draw: st.DrawFn) -> bytes:
    """Bodies near the simple shape: over-long and wide varints, wrong lengths, stray fields."""
    labels = draw(st.lists(st.binary(max_size=12), min_size=1, max_size=3))
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["entry", "entry", "entry", "metadata", "other"]))
        if kind == "entry":
            content = b"".join(
                draw(records(0x0A, draw(st.sampled_from(labels)))) for _ in range(draw(st.integers(0, 3)))
            )
            for _ in range(draw(st.integers(0, 3))):
                fields = b"".join(draw(sample_fields()) for _ in range(draw(st.integers(0, 3))))
                content += draw(records(0x12, fields))
            parts.append(draw(records(0x0A, content)))
        elif kind == "metadata":
            parts.append(draw(records(0x1A, draw(st.binary(max_size=8)))))
        else:
            parts.append(draw(records(draw(st.integers(0, 255)), draw(st.binary(max_size=8)))))
    return b"".join(parts)


@st.composite
def damaged(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> bytes:
    body = bytearray(draw(bodies))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(body)))
        if kind == "flip" and at < len(body):
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del body[at:]
        elif kind == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del body[at : at + draw(st.integers(1, 4))]
    return bytes(body)


@needs_c
@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        write_requests(),
        odd_bodies(),
        damaged(write_requests()),
        damaged(odd_bodies()),
        st.binary(max_size=64),
    )
)
def test_c_and_python_scanners_agree(body: bytes) -> None:
    assert outcome(c_scan(body)) == outcome(_py_scan(body))


@needs_c
@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        write_requests(),
        odd_bodies(),
        damaged(write_requests()),
        damaged(odd_bodies()),
        st.binary(max_size=64),
    )
)
def test_c_and_python_columns_agree(body: bytes) -> None:
    assert columns_outcome(c_columns(body)) == columns_outcome(_py_columns(body))


@settings(max_examples=500, deadline=None)
@given(st.one_of(write_requests(), odd_bodies(), damaged(write_requests())))
def test_columns_are_the_entries_when_each_holds_one_sample(body: bytes) -> None:
    """Columns exist exactly when the dict scan succeeds and every entry has one sample; rows are entries."""
    message = remote_pb2.WriteRequest()
    scanned = _py_scan(body)
    found = _py_columns(body)
    if scanned is None:
        assert found is None
        return
    try:
        message.ParseFromString(body)
    except DecodeError:  # the scanners do not look inside labels: the runtime reports those bodies
        return
    if any(len(entry.samples) != 1 for entry in message.timeseries):
        assert found is None
        return
    assert found is not None
    timestamps = struct.unpack(f"={len(found.keys)}q", found.timestamps)
    bits = struct.unpack(f"={len(found.keys)}Q", found.values)
    rows = list(zip(found.keys, timestamps, bits, strict=True))
    expected = [
        (
            b"".join(record(0x0A, label.SerializeToString()) for label in entry.labels),
            entry.samples[0].timestamp,
            float_bits(entry.samples[0].value),
        )
        for entry in message.timeseries
    ]
    assert rows == expected
    assert found.metadata == scanned.metadata


@needs_c
def test_c_and_python_columns_agree_on_every_truncation() -> None:
    body = b"".join(
        one_sample(b"\x09" + struct.pack("<d", 0.5), b"\x10" + varint(ts, padding=ts % 3)) for ts in range(4)
    ) + record(0x1A, b"meta")
    assert c_columns(body) is not None
    for end in range(len(body) + 1):
        assert columns_outcome(c_columns(body[:end])) == columns_outcome(_py_columns(body[:end])), end


@needs_c
def test_c_columns_keep_no_references_and_leak_nothing() -> None:
    body = write.encode_v1(
        [series([10**12 + n], [n / 3 + 1], __name__="up", job="j", instance=str(n)) for n in range(4)],
        [MetricMetadata("up", MetricType.GAUGE, "help", "")],
    )

    def counts(found: Columns | None) -> list[int]:
        assert found is not None
        objects = [found.keys, *found.keys, found.timestamps, found.values, found.metadata, *found.metadata]
        return [sys.getrefcount(item) for item in objects]

    assert counts(c_columns(body)) == counts(_py_columns(body))
    inputs = [body, bytearray(body), memoryview(body), one_sample(b"\x18\x01"), body[:-3], body + b"\x0a"]
    for _ in range(100):
        for item in inputs:
            c_columns(item)
    held = [sys.getrefcount(item) for item in inputs]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            for item in inputs:
                c_columns(item)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16_384, f"{grown} bytes still allocated after 60,000 scans"
    assert [sys.getrefcount(item) for item in inputs] == held
    resizable = inputs[1]
    assert isinstance(resizable, bytearray)
    resizable.append(0)  # raises BufferError if a buffer export was left behind


@needs_c
def test_c_and_python_scanners_agree_on_every_truncation() -> None:
    body = b"".join(
        one_sample(b"\x09" + struct.pack("<d", 0.5), b"\x10" + varint(ts, padding=ts % 3)) for ts in range(4)
    ) + record(0x1A, b"meta")
    for end in range(len(body) + 1):
        assert outcome(c_scan(body[:end])) == outcome(_py_scan(body[:end])), end


def reference_counts(scanned: Scanned | None) -> list[int]:
    """How many references each object of a result has (none shared: no small ints, no 0.0 constant)."""
    assert scanned is not None
    objects: list[object] = [scanned.series, scanned.metadata, *scanned.metadata]
    for key, entry in scanned.series.items():
        objects += [key, entry, *entry, *entry[0], *entry[1]]
    return [sys.getrefcount(item) for item in objects]


@needs_c
def test_c_scanner_keeps_no_references_and_leaks_nothing() -> None:
    body = write.encode_v1(
        [series([10**12 + n], [n / 3 + 1], __name__="up", job="j", instance=str(n % 2)) for n in range(4)],
        [MetricMetadata("up", MetricType.GAUGE, "help", "")],
    )
    assert reference_counts(c_scan(body)) == reference_counts(_py_scan(body))
    inputs = [body, bytearray(body), memoryview(body), one_sample(b"\x18\x01"), body[:-3], body + b"\x0a"]
    for _ in range(100):  # warm up free lists and caches
        for item in inputs:
            c_scan(item)
    counts = [sys.getrefcount(item) for item in inputs]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            for item in inputs:
                c_scan(item)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16_384, f"{grown} bytes still allocated after 60,000 scans"  # a leak per call: > 300 kB
    assert [sys.getrefcount(item) for item in inputs] == counts
    resizable = inputs[1]
    assert isinstance(resizable, bytearray)
    resizable.append(0)  # raises BufferError if a buffer export was left behind


def test_the_implementation_is_chosen_once_at_import() -> None:
    expected = "python" if _c_scan is None else "c"
    assert native.IMPLEMENTATION in ("c", "python")
    assert v1_scan.scan is (_c_scan if native.IMPLEMENTATION == "c" else _py_scan)

    def chosen(**env: str) -> str:
        code = "from remote_storage.protocol.wire import v1_scan; print(v1_scan.scan.__name__)"
        environ = {k: v for k, v in os.environ.items() if k != "REMOTE_STORAGE_PURE_PYTHON"} | env
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert chosen() == f"_{'c' if expected == 'c' else 'py'}_scan"
    assert chosen(REMOTE_STORAGE_PURE_PYTHON="1") == "_py_scan"
