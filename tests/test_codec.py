"""The C extensions ``remote_storage._xor`` and ``..protocol.wire._wire`` give what their Python twins give.

Chunks: the C encoder and decoder against the Python ones of
:mod:`remote_storage.chunks` (the reference, itself checked against
Prometheus' golden bytes in ``test_chunks.py``) on arbitrary samples, and on
damaged chunks, where both must refuse with the same error. Records: the
label, sample and chunk records and whole ``SAMPLES`` responses against
protobuf's own serializer, in both implementations. Tests of the C code skip
when the extension is not built.
"""

from __future__ import annotations

import gc
import os
import random
import struct
import subprocess
import sys
import tracemalloc
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage import chunks, native
from remote_storage.chunks import (
    MAX_SAMPLES,
    ChunkDecodeError,
    _c_decode_chunk,
    _c_encode_chunk,
    _c_pack_chunk,
    _py_decode_chunk,
    _py_encode_chunk,
    _py_pack_chunk,
)
from remote_storage.protocol import histograms, read, streamed
from remote_storage.protocol.pb import remote_pb2, types_pb2
from remote_storage.protocol.wire import frames as wire_frames
from remote_storage.protocol.wire import records as wire_records
from remote_storage.storage import EncodedChunk, Histogram, Labels, QueryResult, ResetHint, TimeSeries
from remote_storage.testing import MAX_TIME, MIN_TIME, SPECIAL_VALUES, float_from_bits
from tests.support import chunk_data
from tests.support.chunk_data import floats

needs_c = pytest.mark.skipif(
    not native.built, reason="the C extensions are not built (no C compiler at installation)"
)

Decode = Callable[[Any], "tuple[array[int], array[float]]"]


def xor() -> native.XorCodec:
    assert native.xor is not None
    return native.xor


def wire() -> native.WireCodec:
    assert native.wire is not None
    return native.wire


def c_encode(timestamps: Any, values: Any) -> bytes:
    assert _c_encode_chunk is not None
    return _c_encode_chunk(timestamps, values)


def c_pack(timestamps: Any, values: Any) -> bytes:
    assert _c_pack_chunk is not None
    return _c_pack_chunk(timestamps, values)


def c_decode(data: Any) -> tuple[array[int], array[float]]:
    assert _c_decode_chunk is not None
    return _c_decode_chunk(data)


def patterns_of(values: array[float]) -> list[int]:
    return array("Q", values.tobytes()).tolist()


def outcome(decode: Decode, data: bytes) -> object:
    """What a decoder makes of the bytes: the samples as bit patterns, or the error it raised."""
    try:
        timestamps, values = decode(data)
    except ChunkDecodeError as exc:
        return ("error", str(exc), exc.reason, exc.sample)
    return timestamps.tolist(), patterns_of(values)


# -- strategies ---------------------------------------------------------------------

SPECIALS = (*SPECIAL_VALUES, 0x7FF4000000000000, 0xFFF0000000000002, 0x3FF0000000000000)
PATTERNS = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from(SPECIALS))
ANY_TIMESTAMPS = st.lists(st.integers(MIN_TIME, MAX_TIME), unique=True, max_size=130).map(sorted)
DELTAS = st.one_of(
    st.integers(14_990, 15_010),  # a scrape interval with jitter: the 1- and 16-bit buckets
    st.integers(1, 2**20),  # the 20- and 24-bit buckets
    st.integers(1, 2**62),  # the 68-bit bucket (deltas beyond int64 come from ANY_TIMESTAMPS)
)
STEPPED_TIMESTAMPS = st.tuples(st.integers(MIN_TIME, MAX_TIME), st.lists(DELTAS, max_size=130)).map(
    lambda first_deltas: _stepped(*first_deltas)
)


def _stepped(first: int, deltas: list[int]) -> list[int]:
    timestamps = [first]
    for delta in deltas:
        if timestamps[-1] + delta > MAX_TIME:
            break
        timestamps.append(timestamps[-1] + delta)
    return timestamps


def samples() -> st.SearchStrategy[tuple[list[int], list[int]]]:
    return chunk_data.series(st.one_of(ANY_TIMESTAMPS, STEPPED_TIMESTAMPS), PATTERNS)


def random_samples(n: int, seed: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    t = rng.randint(-(2**40), 2**40)
    timestamps, patterns = [], []
    for _ in range(n):
        timestamps.append(t)
        t += rng.choice((15_000 + rng.randint(-20, 20), rng.randint(1, 2**20), rng.randint(1, 2**36)))
        repeated = patterns[-1] if patterns else 0  # an unchanged value: a one-bit sample
        patterns.append(rng.choice((rng.getrandbits(64), repeated, *SPECIALS[:3])))
    return timestamps, patterns


# -- chunk encoding -----------------------------------------------------------------


@needs_c
@settings(max_examples=400, deadline=None)
@given(samples())
def test_c_encoder_writes_the_python_encoders_bytes(drawn: tuple[list[int], list[int]]) -> None:
    timestamps, patterns = drawn
    expected = _py_encode_chunk(timestamps, floats(patterns))
    assert xor().encode_chunk(array("q", timestamps), floats(patterns)) == expected
    assert c_encode(timestamps, floats(patterns)) == expected
    assert c_encode(timestamps, [float_from_bits(p) for p in patterns]) == expected  # lists are converted


@needs_c
@pytest.mark.parametrize("n", [0, 1, 2, 120, MAX_SAMPLES])
def test_c_encoder_at_the_sizes_that_matter(n: int) -> None:
    timestamps, patterns = random_samples(n, seed=n)
    data = c_encode(array("q", timestamps), floats(patterns))
    assert data == _py_encode_chunk(timestamps, floats(patterns))
    assert int.from_bytes(data[:2], "big") == n
    assert outcome(c_decode, data) == outcome(_py_decode_chunk, data) == (timestamps, patterns)


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.one_of(samples(), chunk_data.metric_series(st.one_of(ANY_TIMESTAMPS, STEPPED_TIMESTAMPS))))
def test_c_packer_writes_the_python_packers_bytes(drawn: tuple[list[int], list[int]]) -> None:
    timestamps, patterns = drawn
    expected = _py_pack_chunk(timestamps, floats(patterns))
    assert xor().pack_chunk(array("q", timestamps), floats(patterns)) == expected
    assert c_pack(timestamps, floats(patterns)) == expected


@needs_c
@pytest.mark.parametrize("n", [0, 1, 2, 120, 480, MAX_SAMPLES])
def test_c_packer_at_the_sizes_that_matter(n: int) -> None:
    # A gauge that wanders in small steps, now and then a random value: windows of every width.
    rng = random.Random(n)
    timestamps = random_samples(n, seed=n)[0]
    values, value = [], 1000.0
    for _ in range(n):
        value = rng.getrandbits(64) if rng.random() < 0.01 else value + rng.choice((0.0, 0.5, rng.random()))
        values.append(float_from_bits(value) if isinstance(value, int) else value)
        value = values[-1] if value == value else 0.0  # a random NaN pattern restarts at 0
    data = c_pack(array("q", timestamps), array("d", values))
    assert data == _py_pack_chunk(timestamps, array("d", values))
    assert int.from_bytes(data[:2], "big") == n
    assert outcome(c_decode, data) == (timestamps, patterns_of(array("d", values)))


@needs_c
def test_c_encoder_takes_any_int64_and_float64_buffer() -> None:
    timestamps, patterns = random_samples(300, seed=1)
    ts, vs = array("q", timestamps), floats(patterns)
    expected = _py_encode_chunk(timestamps[100:250:3], vs[100:250:3])
    assert xor().encode_chunk(memoryview(ts)[100:250:3], memoryview(vs)[100:250:3]) == expected  # strided
    assert xor().encode_chunk(memoryview(ts[100:250:3]), memoryview(vs[100:250:3])) == expected
    cast_ts, cast_vs = memoryview(ts.tobytes()).cast("q"), memoryview(vs.tobytes()).cast("d")
    assert xor().encode_chunk(cast_ts, cast_vs) == _py_encode_chunk(ts, vs)
    assert c_encode(range(0, 5000, 1000), (float(i) for i in range(5))) == _py_encode_chunk(
        range(0, 5000, 1000), [0.0, 1.0, 2.0, 3.0, 4.0]
    )
    with pytest.raises(TypeError, match="bytes-like object is required"):
        xor().encode_chunk([1, 2], array("d", [1.0, 2.0]))  # a list: the wrapper converts it first
    for bad in (array("d", [1.0]), b"12345678", memoryview(array("i", [1, 2])), memoryview(ts).cast("B")):
        with pytest.raises(TypeError, match="timestamps must be a one-dimensional buffer of int64"):
            xor().encode_chunk(bad, array("d", [1.0]))
    with pytest.raises(TypeError, match="values must be a one-dimensional buffer of float64"):
        xor().encode_chunk(array("q", [1]), array("q", [1]))


@pytest.mark.parametrize(
    ("timestamps", "values"),
    [
        ([1, 1], [0.0, 0.0]),
        ([5, 6, 7, 3], [0.0] * 4),
        ([1, 2, 3], [0.0, 1.0]),
        (list(range(MAX_SAMPLES + 1)), [0.0] * (MAX_SAMPLES + 1)),
        ([MAX_TIME + 1], [0.0]),
    ],
)
def test_encoding_errors_are_the_same_in_both(timestamps: list[int], values: list[float]) -> None:
    with pytest.raises(ValueError) as python:
        _py_encode_chunk(timestamps, values)
    with pytest.raises(ValueError) as python_packed:
        _py_pack_chunk(timestamps, values)
    assert str(python_packed.value) == str(python.value)
    if native.xor is not None:
        for encode in (c_encode, c_pack):
            with pytest.raises(ValueError) as c:
                encode(timestamps, values)
            assert str(c.value) == str(python.value)
        if len(timestamps) == len(values) and MAX_TIME + 1 not in timestamps:
            assert xor().encode_chunk(array("q", timestamps), array("d", values)) is None  # left to Python
            assert xor().pack_chunk(array("q", timestamps), array("d", values)) is None


# -- chunk decoding -----------------------------------------------------------------


@needs_c
@settings(max_examples=400, deadline=None)
@given(samples())
def test_c_decoder_reads_what_the_python_decoder_reads(drawn: tuple[list[int], list[int]]) -> None:
    timestamps, patterns = drawn
    data = _py_encode_chunk(timestamps, floats(patterns))
    found = xor().decode_chunk(data)
    assert found is not None
    assert (found[0].typecode, found[1].typecode) == ("q", "d")
    assert (found[0].tolist(), patterns_of(found[1])) == (timestamps, patterns)
    assert outcome(c_decode, bytearray(data) + b"\xff\x00") == outcome(_py_decode_chunk, data)  # tail ignored


def agree_on(data: bytes) -> None:
    """The raw C decoder refuses exactly what the Python decoder refuses, and otherwise agrees."""
    expected = outcome(_py_decode_chunk, data)
    raw = xor().decode_chunk(data)
    if isinstance(expected, tuple) and expected[0] == "error":
        assert raw is None
    else:
        assert raw is not None
        assert (raw[0].tolist(), patterns_of(raw[1])) == expected
    assert outcome(c_decode, data) == expected  # the wrapper: the same samples, or the same error


@needs_c
@settings(max_examples=400, deadline=None)
@given(samples(), st.randoms(use_true_random=False))
def test_damaged_chunks_decode_alike(drawn: tuple[list[int], list[int]], rng: random.Random) -> None:
    data = bytearray(_py_encode_chunk(drawn[0], floats(drawn[1])))
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(8 * len(data))
        data[position // 8] ^= 0x80 >> (position % 8)
    agree_on(bytes(data))
    agree_on(bytes(data[: rng.randrange(len(data) + 1)]))


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60), st.integers(0, 40))
def test_arbitrary_bytes_decode_alike(tail: bytes, count: int) -> None:
    agree_on(count.to_bytes(2, "big") + tail)
    agree_on(tail)


@needs_c
def test_every_truncation_decodes_alike() -> None:
    for seed, n in [(1, 2), (2, 3), (3, 120), (4, 250)]:
        timestamps, patterns = random_samples(n, seed)
        data = _py_encode_chunk(timestamps, floats(patterns))
        for cut in range(len(data) + 1):
            agree_on(data[:cut])


@needs_c
def test_decoder_edge_cases_decode_alike() -> None:
    cases = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x00\xff",
        b"\xff\xff",  # 65535 samples claimed, none there
        b"\x00\x01" + b"\xff" * 9 + b"\x01" + bytes(8),  # the widest first timestamp
        b"\x00\x01" + b"\xff" * 9 + b"\x02" + bytes(8),  # one bit too wide
        b"\x00\x02" + b"\x02" + bytes(8) + b"\xff" * 9 + b"\x01" + b"\x00",  # the widest second delta
        b"\x00\x02" + b"\x02" + bytes(8) + b"\x01" + b"\xff\xff",  # a window of 31 + 63 bits
        b"\x00\x03" + b"\x02" + bytes(8) + b"\x01" + b"\x00",  # the last sample's bits are missing
    ]
    for case in cases:
        agree_on(case)
    for chunk in (memoryview(b"\x00\x01\x02" + bytes(8)), bytearray(b"\x00\x00")):
        assert outcome(c_decode, chunk) == outcome(_py_decode_chunk, bytes(chunk))
    strided = memoryview(b"\x00\x00\x00\x01\x00\x02" + bytes(16))[::2]  # not contiguous: left to Python
    assert xor().decode_chunk(strided) is None
    assert outcome(c_decode, strided) == outcome(_py_decode_chunk, strided)
    with pytest.raises(TypeError):
        c_decode("not bytes")


# -- protobuf records ---------------------------------------------------------------

INT64 = st.integers(MIN_TIME, MAX_TIME)
TEXT = st.text(max_size=12) | st.sampled_from(["", "__name__", "ünï", "x" * 300])


def implementations() -> list[Any]:
    return ["python", pytest.param("c", marks=needs_c)]


@pytest.fixture(scope="module", params=implementations())
def records(request: pytest.FixtureRequest) -> Iterator[str]:
    """The record encoders and frame writer of the wire layer in each implementation in turn."""
    python = request.param == "python"
    with pytest.MonkeyPatch.context() as patch:
        twin = "_py_" if python else "_c_"
        for name in ("encode_labels", "encode_samples", "encode_chunk_records", "encode_joined_labels"):
            patch.setattr(wire_records, name, getattr(wire_records, twin + name))
        frames = wire_frames._py_series_frames if python else wire().encode_series_frames
        patch.setattr(wire_frames, "series_frames", frames)
        yield request.param


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(INT64, PATTERNS), max_size=40))
def test_sample_records_are_protobufs(records: str, pairs: list[tuple[int, int]]) -> None:
    message = types_pb2.TimeSeries()
    for t, pattern in pairs:
        message.samples.add(timestamp=t, value=float_from_bits(pattern))
    timestamps = array("q", [t for t, _ in pairs])
    values = floats([p for _, p in pairs])
    assert wire_records.encode_samples(timestamps, values) == message.SerializeToString()
    assert wire_records.encode_samples(list(timestamps), values.tolist()) == message.SerializeToString()


def test_sample_records_leave_out_defaults_by_their_bits(records: str) -> None:
    data = wire_records.encode_samples(array("q", [0, 0, 1]), floats([0, 0x8000000000000000, 0]))
    assert data.hex(" ") == "12 00 12 09 09 00 00 00 00 00 00 00 80 12 02 10 01"
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        wire_records.encode_samples(array("q", [1, 2]), array("d", [1.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), max_size=12))
def test_label_records_are_protobufs(records: str, pairs: list[tuple[str, str]]) -> None:
    message = types_pb2.TimeSeries()
    for name, value in pairs:
        message.labels.add(name=name, value=value)
    assert wire_records.encode_labels(Labels(pairs)) == message.SerializeToString()
    assert wire_records.encode_labels(tuple(pairs)) == message.SerializeToString()  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(INT64, INT64, st.binary(max_size=300)), max_size=6))
def test_chunk_records_are_protobufs(records: str, fields: list[tuple[int, int, bytes]]) -> None:
    message = types_pb2.ChunkedSeries()
    for min_time, max_time, data in fields:
        message.chunks.add(min_time_ms=min_time, max_time_ms=max_time, type=types_pb2.Chunk.XOR, data=data)
    encoded = [EncodedChunk(*f) for f in fields]
    assert wire_records.encode_chunk_records(encoded) == message.SerializeToString()
    assert wire_records.encode_chunk_records(tuple(encoded)) == message.SerializeToString()


def joined(pairs: Sequence[tuple[str, str]]) -> bytes:
    """A label set as the SQL backend stores it: UTF-8 names and values joined by 0xFF."""
    return b"\xff".join(part.encode() for pair in pairs for part in pair)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), max_size=12))
def test_joined_label_sets_become_label_records(records: str, pairs: list[tuple[str, str]]) -> None:
    message = types_pb2.TimeSeries()
    for name, value in pairs:
        message.labels.add(name=name, value=value)
    assert wire_records.encode_joined_labels(joined(pairs)) == message.SerializeToString()


def test_joined_label_sets_must_pair_up(records: str) -> None:
    for data in (b"name", b"a\xffb\xffc", b"a\xffb\xff", b"\xff\xff"):
        with pytest.raises(ValueError, match="do not pair up"):
            wire_records.encode_joined_labels(data)
    assert wire_records.encode_joined_labels(b"") == b""
    assert wire_records.encode_joined_labels(b"\xff") == b"\x0a\x00"  # one label, name and value empty


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.lists(st.binary(max_size=6), max_size=8).map(b"\xff".join))
def test_any_joined_bytes_encode_alike(data: bytes) -> None:
    c = wire().encode_joined_labels(data)
    try:
        python = wire_records._py_encode_joined_labels(data)
    except ValueError:
        assert c is None
    else:
        assert c == python


CHUNKS = st.lists(st.builds(EncodedChunk, INT64, INT64, st.binary(max_size=200)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**64 - 1) | st.integers(0, 3),
    st.lists(st.tuples(TEXT, TEXT), max_size=4),
    CHUNKS,
    st.integers(1, 800),
)
def test_series_frames_are_the_frames_joined(
    records: str, query_index: int, pairs: list[tuple[str, str]], stored: list[EncodedChunk], max_bytes: int
) -> None:
    labels = Labels(pairs)
    data, samples = streamed.series_frames(query_index, wire_records.encode_labels(labels), stored, max_bytes)
    assert data == b"".join(streamed.encode_series_frames(query_index, labels, stored, max_bytes))
    assert samples == sum(chunks.chunk_samples(chunk.data) for chunk in stored)
    assert len(streamed.decode_frames(data)) == len(
        list(streamed.encode_series_frames(0, labels, stored, max_bytes))
    )


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.binary(max_size=100), CHUNKS, st.integers(-10, 2_000))
def test_c_series_frames_are_the_python_ones(
    query_index: int, label_records: bytes, stored: list[EncodedChunk], max_bytes: int
) -> None:
    c = wire().encode_series_frames(query_index, label_records, stored, max_bytes)
    assert c == wire_frames._py_series_frames(query_index, label_records, stored, max_bytes)


def test_joined_labels_of_a_series_are_written_as_records(records: str) -> None:
    labels = Labels((("__name__", "up"), ("job", "ünï")))
    handed = TimeSeries.lazy(b"k", lambda: labels, [5], [1.0], joined_labels=joined(labels))
    assert read.encode_read_response([QueryResult([handed])]) == protobuf_read_response(
        [QueryResult([TimeSeries(labels, [5], [1.0])])]
    )


def protobuf_read_response(results: Sequence[QueryResult]) -> bytes:
    """The ReadResponse built with protobuf message objects, sample by sample: the reference."""
    message = remote_pb2.ReadResponse()
    for result in results:
        out = message.results.add()
        for series in result.series:
            ts = out.timeseries.add()
            for name, value in series.labels:
                ts.labels.add(name=name, value=value)
            for t, v in zip(series.timestamps, series.values, strict=True):
                ts.samples.add(timestamp=t, value=v)
            for h in series.histograms:
                histograms.to_proto(h, ts.histograms.add())
    data: bytes = message.SerializeToString()
    return data


HISTOGRAMS = st.builds(
    Histogram,
    timestamp=INT64,
    count=st.integers(0, 2**40),
    sum=st.integers(0, 2**64 - 1).map(float_from_bits),
    schema=st.integers(-4, 8),
    zero_threshold=st.sampled_from([0.0, 1e-128]),
    zero_count=st.integers(0, 100),
    positive_spans=st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3)), max_size=2).map(tuple),
    positive_buckets=st.lists(st.integers(-10, 10), max_size=3).map(tuple),
    reset_hint=st.sampled_from(ResetHint),
) | st.builds(
    Histogram,
    timestamp=INT64,
    count=st.floats(0, 1e9),
    sum=st.floats(allow_nan=False),
    schema=st.integers(-4, 8),
    zero_threshold=st.just(0.0),
    zero_count=st.floats(0, 10),
    is_float=st.just(True),
    negative_spans=st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3)), max_size=2).map(tuple),
    negative_buckets=st.lists(st.floats(0, 100), max_size=3).map(tuple),
    custom_values=st.lists(st.floats(0, 100), max_size=2).map(tuple),
)


@st.composite
def series(draw: st.DrawFn) -> TimeSeries:
    labels = Labels(sorted(draw(st.dictionaries(TEXT, TEXT, max_size=5)).items()))
    pairs = draw(st.lists(st.tuples(INT64, PATTERNS), max_size=20))
    timestamps = [t for t, _ in pairs]
    values = [float_from_bits(p) for _, p in pairs]
    if draw(st.booleans()):  # as the memory backend hands them over
        return TimeSeries(labels, array("q", timestamps), floats([p for _, p in pairs]))
    return TimeSeries(labels, timestamps, values, draw(st.lists(HISTOGRAMS, max_size=2)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(series(), max_size=4).map(QueryResult), max_size=3))
def test_read_responses_are_protobufs(records: str, results: list[QueryResult]) -> None:
    assert read.encode_read_response(results) == protobuf_read_response(results)


def test_read_response_of_many_series(records: str) -> None:
    ts, patterns = random_samples(500, seed=5)
    many = [
        TimeSeries(Labels((("__name__", f"m{i}"), ("job", "j"))), array("q", ts[i:]), floats(patterns[i:]))
        for i in range(0, 500, 7)
    ]
    results = [QueryResult(many), QueryResult([]), QueryResult(many[:3])]
    assert read.encode_read_response(results) == protobuf_read_response(results)
    assert read.encode_read_response([]) == b""


# -- choice and hygiene -------------------------------------------------------------


# As imported, before the fixtures above swap implementations in and out.
IMPORTED = (
    chunks.encode_chunk,
    chunks.decode_chunk,
    wire_records.encode_samples,
    wire_records.encode_chunk_records,
)


def test_the_implementation_is_chosen_once_at_import() -> None:
    assert native.IMPLEMENTATION in (("c", "python") if native.built else ("python",))
    c = (
        _c_encode_chunk,
        _c_decode_chunk,
        wire_records._c_encode_samples,
        wire_records._c_encode_chunk_records,
    )
    python = (
        _py_encode_chunk,
        _py_decode_chunk,
        wire_records._py_encode_samples,
        wire_records._py_encode_chunk_records,
    )
    expected = c if native.IMPLEMENTATION == "c" else python
    assert expected == IMPORTED

    def chosen(**env: str) -> str:
        code = (
            "from remote_storage import native; from remote_storage.protocol.wire import records as r; "
            "print(native.IMPLEMENTATION, r.encode_samples.__name__, r.encode_chunk_records.__name__)"
        )
        environ = {k: v for k, v in os.environ.items() if k != "REMOTE_STORAGE_PURE_PYTHON"} | env
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    if native.xor is not None:
        assert chosen() == "c _c_encode_samples encode_chunk_records"
    assert chosen(REMOTE_STORAGE_PURE_PYTHON="1") == "python _py_encode_samples _py_encode_chunk_records"


@needs_c
def test_c_extensions_keep_no_references_and_leak_nothing() -> None:
    timestamps, patterns = random_samples(200, seed=9)
    ts, vs = array("q", timestamps), floats(patterns)
    data = bytearray(_py_encode_chunk(ts, vs))
    labels = Labels((("__name__", "up"), ("job", "ünï")))
    encoded = [EncodedChunk(1, 2, bytes(data)), EncodedChunk(-5, 0, data)]
    c, w = xor(), wire()

    def calls() -> None:
        c.encode_chunk(ts, vs)
        c.encode_chunk(ts[::-1], vs[::-1])  # refused
        c.decode_chunk(data)
        c.decode_chunk(data[:-3])  # refused
        w.encode_samples(ts, vs)
        w.encode_labels(labels)
        w.encode_chunk_records(encoded)
        w.encode_series_frames(7, bytes(data[:30]), encoded, 100)
        w.encode_joined_labels(b"__name__\xffup\xffjob\xff\xc3\xbcn")
        w.encode_joined_labels(b"odd")  # refused
        for bad in (lambda: c.encode_chunk(ts, ts), lambda: w.encode_labels((("a", 1),))):  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                bad()

    for _ in range(100):  # warm up free lists and caches
        calls()
    counts = [sys.getrefcount(item) for item in (ts, vs, data, labels, encoded[0])]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(3_000):
            calls()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16_384, f"{grown} bytes still allocated after 3,000 rounds"
    assert [sys.getrefcount(item) for item in (ts, vs, data, labels, encoded[0])] == counts
    ts.append(0)  # raises BufferError if a buffer export was left behind
    vs.append(0.0)
    data.append(0)


def test_values_keep_their_bits_through_lists() -> None:
    """The stale marker stays a signalling NaN on the way through Python floats and back."""
    stale = float_from_bits(0x7FF0000000000002)
    data = chunks.encode_chunk([1000, 2000], [stale, -0.0])
    assert patterns_of(chunks.decode_chunk(data)[1]) == [0x7FF0000000000002, 0x8000000000000000]
    assert struct.pack("<d", chunks.decode_chunk(data)[1][0]) == struct.pack("<Q", 0x7FF0000000000002)
