"""XOR chunks: Prometheus' golden bytes, every bucket edge, and properties checked bit for bit.

Values are compared as 64-bit patterns throughout, so NaN payloads count.
``reference_decode`` below is a second decoder written the plainest way (one
bit at a time, Go's integer semantics spelled out) to cross-check the fast one.
"""

from __future__ import annotations

import doctest
import random
from array import array
from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage import chunks
from remote_storage.chunks import (
    MAX_SAMPLES,
    ChunkDecodeError,
    XORChunkEncoder,
    decode_chunk,
    encode_chunk,
    pack_chunk,
    split_into_chunks,
)
from remote_storage.storage import EncodedChunk
from remote_storage.testing import MAX_TIME, MIN_TIME, SPECIAL_VALUES, STALE_NAN_BITS, bits, float_from_bits
from tests.support import chunk_data
from tests.support.chunk_data import floats
from tests.support.xor_reference import ReferenceDecodeError, reference_decode, reference_value_bits

# PROTOCOL.md 5.6 and 4.5, and Prometheus' read-handler test chunk.
GOLDEN_4 = bytes.fromhex("00 04 d0 0f 3f f0 00 00 00 00 00 00 e8 07 c2 5f ff 6c 07 00 0b 40")
GOLDEN_3 = bytes.fromhex("00 03 d0 0f 3f f0 00 00 00 00 00 00 e8 07 c2 5f ff 6c 06")
GOLDEN_1 = bytes.fromhex("00 01 80 f4 ee 06 40 c7 70 00 00 00 00 00")
FRAME_EXAMPLE = bytes.fromhex(
    "31 5e917681 0a2f 0a0e0a085f5f6e616d655f5f12027570 121d 08e807 10b817 1801"
    " 2213 0003d00f3ff0000000000000e807c25fff6c06"
)


def value_bits(values: Sequence[float]) -> list[int]:
    """Bit patterns of decoded values, taken from the array's memory (no float ever touched)."""
    return memoryview(array("d", values)).cast("B").cast("Q").tolist()


def decoded(data: bytes | bytearray | memoryview) -> tuple[list[int], list[int]]:
    timestamps, values = decode_chunk(data)
    return timestamps.tolist(), value_bits(values)


def bitstring(data: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in data)


# --- golden bytes ---------------------------------------------------------------


def test_protocol_example_four_samples() -> None:
    assert encode_chunk([1000, 2000, 3000, 4005], [1.0, 2.0, 3.0, 2.0]) == GOLDEN_4
    assert decoded(GOLDEN_4) == ([1000, 2000, 3000, 4005], value_bits([1.0, 2.0, 3.0, 2.0]))


def test_protocol_example_three_samples() -> None:
    assert encode_chunk([1000, 2000, 3000], [1.0, 2.0, 3.0]) == GOLDEN_3
    assert decoded(GOLDEN_3) == ([1000, 2000, 3000], value_bits([1.0, 2.0, 3.0]))


def test_prometheus_read_handler_one_sample_chunk() -> None:
    assert encode_chunk([7_200_000], [12000.0]) == GOLDEN_1
    assert decoded(GOLDEN_1) == ([7_200_000], value_bits([12000.0]))


def test_full_frame_example_chunk() -> None:
    data = FRAME_EXAMPLE[FRAME_EXAMPLE.index(b"\x22\x13") + 2 :]
    assert len(data) == 0x13
    assert encode_chunk([1000, 2000, 3000], [1.0, 2.0, 3.0]) == data
    assert split_into_chunks([1000, 2000, 3000], [1.0, 2.0, 3.0]) == [EncodedChunk(1000, 3000, data)]
    assert split_into_chunks([1000, 2000, 3000], [1.0, 2.0, 3.0])[0].count == 3


def test_golden_bytes_through_the_incremental_encoder() -> None:
    encoder = XORChunkEncoder()
    for t, v in [(1000, 1.0), (2000, 2.0), (3000, 3.0)]:
        encoder.append(t, v)
    assert encoder.bytes() == GOLDEN_3
    encoder.append(4005, 2.0)
    assert encoder.bytes() == GOLDEN_4
    assert encoder.chunk() == EncodedChunk(1000, 4005, GOLDEN_4)
    assert encoder.chunk().count == 4


def test_module_examples_run() -> None:
    assert doctest.testmod(chunks).failed == 0


# --- timestamps -----------------------------------------------------------------

BUCKETS = ((14, "10"), (17, "110"), (20, "1110"))


def expected_dod_bits(dod: int) -> str:
    if dod == 0:
        return "0"
    for width, prefix in BUCKETS:
        if -(2 ** (width - 1) - 1) <= dod <= 2 ** (width - 1):
            return prefix + format(dod % 2**width, f"0{width}b")
    return "1111" + format(dod % 2**64, "064b")


EDGES = [0, 1, -1]
for _width, _ in BUCKETS:
    _top = 2 ** (_width - 1)
    EDGES += [_top, -(_top - 1), _top + 1, -_top]  # last and first of the bucket, each side
EDGES += [2**40, -(2**40), 2**62]


@pytest.mark.parametrize("dod", EDGES)
def test_delta_of_delta_buckets(dod: int) -> None:
    base = 2**43
    timestamps = [-5, base - 5, 2 * base - 5 + dod]
    data = encode_chunk(timestamps, [0.5] * 3)
    offset = 8 * (2 + 1 + 8 + 7) + 1  # count, varint(-5), value, uvarint(2**43), value "0"
    expected = expected_dod_bits(dod) + "0"
    assert bitstring(data)[offset : offset + len(expected)] == expected
    assert len(data) * 8 - (offset + len(expected)) in range(8)
    assert decoded(data) == (timestamps, value_bits([0.5] * 3))


def test_bucket_decoding_of_the_pattern_one_followed_by_zeros_is_positive() -> None:
    for width, prefix in BUCKETS:
        top = 2 ** (width - 1)
        data = encode_chunk([0, 100, 200 + top], [1.0] * 3)
        assert prefix + "1" + "0" * (width - 1) in bitstring(data)
        assert decoded(data)[0] == [0, 100, 200 + top]


def test_deltas_beyond_int64_wrap_as_in_go() -> None:
    # delta 1 then 2**64 - 2: Go's int64 dod is -3, a 14-bit field, not the 64-bit one.
    timestamps = [MIN_TIME, MIN_TIME + 1, MAX_TIME]
    data = encode_chunk(timestamps, [1.0] * 3)
    assert expected_dod_bits(-3) + "0" in bitstring(data)
    assert len(data) == 2 + 10 + 8 + 1 + 3
    assert decoded(data) == reference_decode(data) == (timestamps, value_bits([1.0] * 3))
    both_ends = [MIN_TIME, MAX_TIME]
    assert decoded(encode_chunk(both_ends, [0.0, 1.0]))[0] == both_ends


def test_first_timestamp_is_a_zigzag_varint() -> None:
    assert encode_chunk([-1], [0.0])[2:3] == b"\x01"
    assert encode_chunk([1], [0.0])[2:3] == b"\x02"
    assert encode_chunk([MIN_TIME], [0.0])[2:12] == b"\xff" * 9 + b"\x01"


# --- values ---------------------------------------------------------------------


def test_leading_zeros_are_capped_at_31() -> None:
    # 0.0 then the pattern 1: 63 leading zeros are written as 31, so 33 bits are significant.
    data = encode_chunk([0, 1], floats([0, 1]))
    after_delta = 8 * (2 + 1 + 8 + 1)
    expected = "11" + "11111" + format(33, "06b") + "0" * 32 + "1"
    assert bitstring(data)[after_delta : after_delta + len(expected)] == expected
    assert decoded(data) == reference_decode(data) == ([0, 1], [0, 1])


def test_sixty_four_significant_bits_are_written_as_zero() -> None:
    pattern = 0x8000_0000_0000_0001
    data = encode_chunk([0, 1], floats([0, pattern]))
    after_delta = 8 * (2 + 1 + 8 + 1)
    expected = "11" + "00000" + "000000" + format(pattern, "064b")
    assert bitstring(data)[after_delta : after_delta + len(expected)] == expected
    assert decoded(data) == reference_decode(data) == ([0, 1], [0, pattern])


def test_window_is_reused_when_the_new_bits_fit() -> None:
    patterns = [0, 0xF0, 0x30, 0x31]  # a new window (lz capped at 31), reused, then a new one for bit 0
    data = encode_chunk([0, 1, 2, 3], floats(patterns))
    assert decoded(data) == reference_decode(data) == ([0, 1, 2, 3], patterns)


def test_special_values_round_trip_bit_exactly() -> None:
    patterns = [*SPECIAL_VALUES, STALE_NAN_BITS, bits(-0.0), bits(0.0), bits(float("inf")), STALE_NAN_BITS]
    timestamps = list(range(0, 15_000 * len(patterns), 15_000))
    data = encode_chunk(timestamps, [float_from_bits(p) for p in patterns])
    assert decoded(data) == (timestamps, patterns)
    encoder = XORChunkEncoder()
    for t, p in zip(timestamps, patterns, strict=True):
        encoder.append(t, float_from_bits(p))
    assert encoder.bytes() == data


def test_a_full_chunk_round_trips() -> None:
    rng = random.Random(7)
    timestamps = [15_000 * i + rng.randint(-5, 5) for i in range(MAX_SAMPLES)]
    patterns = [rng.choice((rng.getrandbits(64), bits(float(i)), STALE_NAN_BITS)) for i in range(MAX_SAMPLES)]
    data = encode_chunk(timestamps, floats(patterns))
    assert int.from_bytes(data[:2], "big") == MAX_SAMPLES
    assert decoded(data) == (timestamps, patterns)


def test_empty_chunk() -> None:
    assert encode_chunk([], []) == b"\x00\x00"
    assert decoded(b"\x00\x00") == ([], [])
    assert split_into_chunks([], []) == []
    assert XORChunkEncoder().bytes() == b"\x00\x00"


# --- properties -----------------------------------------------------------------

PATTERNS = st.one_of(
    st.integers(0, 2**64 - 1),
    st.sampled_from(SPECIAL_VALUES),
    st.integers(-1000, 1000).map(lambda i: bits(i / 4)),
)
ANY_TIMESTAMPS = st.lists(st.integers(MIN_TIME, MAX_TIME), unique=True, max_size=40).map(sorted)
SCRAPE_TIMESTAMPS = st.tuples(
    st.integers(-(2**50), 2**50),
    st.lists(st.one_of(st.integers(14_990, 15_010), st.integers(1, 2**40)), max_size=40),
).map(lambda start_deltas: [start_deltas[0] + sum(start_deltas[1][:i]) for i in range(len(start_deltas[1]))])


def series() -> st.SearchStrategy[tuple[list[int], list[int]]]:
    return chunk_data.series(st.one_of(ANY_TIMESTAMPS, SCRAPE_TIMESTAMPS), PATTERNS)


@given(series())
@settings(deadline=None)
def test_round_trip_is_bit_exact(samples: tuple[list[int], list[int]]) -> None:
    timestamps, patterns = samples
    data = encode_chunk(timestamps, floats(patterns))
    assert decoded(data) == (timestamps, patterns)
    assert reference_decode(data) == (timestamps, patterns)
    assert encode_chunk(timestamps, [float_from_bits(p) for p in patterns]) == data


@given(series(), st.randoms(use_true_random=False))
@settings(deadline=None)
def test_incremental_encoder_matches_encode_chunk(
    samples: tuple[list[int], list[int]], rng: random.Random
) -> None:
    timestamps, patterns = samples
    encoder = XORChunkEncoder()
    i = 0
    while i < len(timestamps):
        if rng.random() < 0.5:
            encoder.append(timestamps[i], float_from_bits(patterns[i]))
            i += 1
        else:
            j = rng.randint(i, len(timestamps))
            encoder.extend(timestamps[i:j], floats(patterns[i:j]))
            i = j
        assert encoder.bytes() == encode_chunk(timestamps[:i], floats(patterns[:i]))
        assert encoder.count == i
    if timestamps:
        assert (encoder.min_time, encoder.max_time) == (timestamps[0], timestamps[-1])


@given(series(), st.integers(1, 10))
@settings(deadline=None)
def test_split_into_chunks_round_trips(samples: tuple[list[int], list[int]], max_samples: int) -> None:
    timestamps, patterns = samples
    parts = split_into_chunks(timestamps, floats(patterns), max_samples)
    assert sum(chunk.count for chunk in parts) == len(timestamps)
    joined: tuple[list[int], list[int]] = ([], [])
    for chunk in parts:
        part_times, part_values = decoded(chunk.data)
        assert 1 <= chunk.count == len(part_times) <= max_samples
        assert (chunk.min_time, chunk.max_time) == (part_times[0], part_times[-1])
        joined[0].extend(part_times)
        joined[1].extend(part_values)
    assert joined == (timestamps, patterns)
    assert all(chunk.count == max_samples for chunk in parts[:-1])


def reference_or_error(data: bytes) -> object:
    try:
        return reference_decode(data)
    except ReferenceDecodeError:
        return "error"


def fast_or_error(data: bytes) -> object:
    try:
        return decoded(data)
    except ChunkDecodeError:
        return "error"


@given(st.binary(min_size=2, max_size=40).map(lambda b: bytes([0, b[0] % 20]) + b[1:]))
def test_fast_decoder_agrees_with_the_reference_on_random_bytes(data: bytes) -> None:
    assert fast_or_error(data) == reference_or_error(data)


@given(series(), st.randoms(use_true_random=False))
@settings(deadline=None)
def test_fast_decoder_agrees_with_the_reference_on_damaged_chunks(
    samples: tuple[list[int], list[int]], rng: random.Random
) -> None:
    data = bytearray(encode_chunk(samples[0], floats(samples[1])))
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(8 * len(data))
        data[position // 8] ^= 0x80 >> (position % 8)
    assert fast_or_error(bytes(data)) == reference_or_error(bytes(data))


def test_fast_decoder_agrees_with_the_reference_on_random_series() -> None:
    rng = random.Random(1)
    for _ in range(300):
        n = rng.randint(1, 200)
        t = rng.randint(-(2**40), 2**40)
        timestamps, patterns = [], []
        for _ in range(n):
            timestamps.append(t)
            t += rng.choice((15_000 + rng.randint(-20, 20), rng.randint(1, 2**20), rng.randint(1, 2**36)))
            patterns.append(rng.choice((rng.getrandbits(64), bits(float(rng.randint(0, 9))), STALE_NAN_BITS)))
        data = encode_chunk(timestamps, floats(patterns))
        assert decoded(data) == reference_decode(data) == (timestamps, patterns)


# --- packed chunks --------------------------------------------------------------


def smallest_value_bits(patterns: Sequence[int]) -> int:
    """The fewest bits any XOR stream can spend on the values after the first, every window tried.

    The search follows each window a value could start (any leading count up
    to its own, at most 31, and any trailing count up to its own) and keeps the
    cheapest way to be in each window after each value.
    """
    costs: dict[tuple[int, int] | None, int] = {None: 0}  # None: no window yet
    for before, after in pairwise(patterns):
        x = before ^ after
        if not x:
            costs = {window: spent + 1 for window, spent in costs.items()}
            continue
        lz, tz = min(64 - x.bit_length(), 31), (x & -x).bit_length() - 1
        start = min(costs.values()) + 13 + 64
        kept = {
            window: spent + 2 + 64 - window[0] - window[1]
            for window, spent in costs.items()
            if window is not None and lz >= window[0] and tz >= window[1]
        }
        costs = {(lead, trail): start - lead - trail for lead in range(lz + 1) for trail in range(tz + 1)}
        for window, spent in kept.items():
            costs[window] = min(costs[window], spent)
    return min(costs.values())


def metric_series(max_size: int = 40) -> st.SearchStrategy[tuple[list[int], list[int]]]:
    timestamps = st.one_of(ANY_TIMESTAMPS, SCRAPE_TIMESTAMPS).map(lambda ts: ts[:max_size])
    return chunk_data.metric_series(timestamps)


@given(st.one_of(series(), metric_series()))
@settings(deadline=None)
def test_packed_chunk_round_trips_and_is_never_larger(samples: tuple[list[int], list[int]]) -> None:
    timestamps, patterns = samples
    packed = pack_chunk(timestamps, floats(patterns))
    assert decoded(packed) == reference_decode(packed) == (timestamps, patterns)
    greedy = encode_chunk(timestamps, floats(patterns))
    assert reference_value_bits(packed) <= reference_value_bits(greedy)
    assert len(packed) <= len(greedy)
    assert packed[:2] == greedy[:2]  # the same count, and the timestamps are written alike


@given(st.one_of(series(), metric_series()).filter(lambda s: len(s[0]) <= 33))
@settings(deadline=None, max_examples=150)
def test_packed_values_take_the_fewest_bits_any_encoder_can(samples: tuple[list[int], list[int]]) -> None:
    # Up to 33 samples, every window the packer could keep is within its lookback.
    timestamps, patterns = samples
    packed = pack_chunk(timestamps, floats(patterns))
    assert reference_value_bits(packed) == smallest_value_bits(patterns)


def test_packing_shrinks_a_counter_that_prometheus_windows_waste_bits_on() -> None:
    # A counter that starts at 0: its first steps need wide windows, which greedy keeps for
    # every later step, each needing far fewer bits.
    rng = random.Random(7)
    values = [0.0]
    for _ in range(479):
        values.append(values[-1] + rng.randint(0, 40))
    timestamps = list(range(0, 480 * 15_000, 15_000))
    packed, greedy = pack_chunk(timestamps, values), encode_chunk(timestamps, values)
    assert decoded(packed) == (timestamps, value_bits(values))
    assert len(packed) < 0.95 * len(greedy)
    assert reference_value_bits(packed) == smallest_value_bits(value_bits(values))


@given(metric_series(), st.integers(1, 10))
@settings(deadline=None)
def test_split_into_packed_chunks(samples: tuple[list[int], list[int]], max_samples: int) -> None:
    timestamps, patterns = samples
    parts = split_into_chunks(timestamps, floats(patterns), max_samples, encode=pack_chunk)
    assert [chunk.data for chunk in parts] == [
        pack_chunk(timestamps[lo : lo + max_samples], floats(patterns[lo : lo + max_samples]))
        for lo in range(0, len(timestamps), max_samples)
    ]


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamps", "sample"),
    [([1, 1], 1), ([2, 1], 1), ([1, 2, 3, 3], 3), ([1, 2, 3, 2], 3), ([5, 5, 6], 1)],
)
def test_timestamps_must_strictly_increase(timestamps: list[int], sample: int) -> None:
    with pytest.raises(ValueError, match=f"strictly increasing: sample {sample} has"):
        encode_chunk(timestamps, [0.0] * len(timestamps))


def test_more_samples_than_a_chunk_holds() -> None:
    with pytest.raises(ValueError, match="at most 65535 samples"):
        encode_chunk(range(MAX_SAMPLES + 1), [0.0] * (MAX_SAMPLES + 1))
    encoder = XORChunkEncoder()
    encoder.extend(range(MAX_SAMPLES), [0.0] * MAX_SAMPLES)
    with pytest.raises(ValueError, match="split_into_chunks"):
        encoder.append(MAX_SAMPLES, 0.0)


def test_timestamps_and_values_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        encode_chunk([1, 2], [0.0])
    with pytest.raises(ValueError, match="1 timestamps but 2 values"):
        split_into_chunks([1], [0.0, 1.0])


def test_timestamps_must_fit_int64() -> None:
    with pytest.raises(ValueError, match="int64"):
        encode_chunk([MAX_TIME + 1], [0.0])
    with pytest.raises(ValueError, match="int64"):
        XORChunkEncoder().append(MIN_TIME - 1, 0.0)


def test_a_rejected_append_or_extend_changes_nothing() -> None:
    encoder = XORChunkEncoder()
    encoder.extend(range(0, 3000, 100), [float(i) for i in range(30)])
    before = encoder.bytes()
    with pytest.raises(ValueError, match="sample 30 has timestamp 2900 after 2900"):
        encoder.append(2900, 1.0)
    batch = list(range(3000, 5000, 10))
    batch[150] = batch[149]
    with pytest.raises(ValueError, match="sample 150 has timestamp 4490 after 4490"):
        encoder.extend(batch, [i * 1.1 for i in range(200)])  # fails after moving bits into bytes
    with pytest.raises(ValueError, match="sample 0 has timestamp 5 after 2900"):
        encoder.extend([5, 6], [1.0, 1.0])
    assert encoder.bytes() == before
    encoder.append(3000, 2.0)
    assert encoder.bytes() == encode_chunk([*range(0, 3000, 100), 3000], [*map(float, range(30)), 2.0])


def test_second_sample_rejected_on_a_one_sample_encoder() -> None:
    encoder = XORChunkEncoder()
    encoder.append(10, 1.0)
    with pytest.raises(ValueError, match="sample 1 has timestamp 10 after 10"):
        encoder.append(10, 1.0)
    assert encoder.bytes() == encode_chunk([10], [1.0])


def test_an_empty_encoder_has_no_time_range() -> None:
    encoder = XORChunkEncoder()
    assert encoder.count == 0
    with pytest.raises(ValueError, match="empty"):
        _ = encoder.min_time
    with pytest.raises(ValueError, match="empty"):
        _ = encoder.max_time
    with pytest.raises(ValueError, match="empty"):
        encoder.chunk()


def test_split_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_samples must be between 1 and 65535"):
        split_into_chunks([1], [1.0], 0)
    with pytest.raises(ValueError, match="sample 2 has timestamp 2 after 2"):
        split_into_chunks([1, 2, 2], [1.0] * 3, 2)
    with pytest.raises(ValueError, match="sample 3 has timestamp 4 after 4"):
        split_into_chunks([1, 2, 4, 4], [1.0] * 4, 2)


def test_split_default_is_120_samples() -> None:
    parts = split_into_chunks(range(0, 300 * 60_000, 60_000), [float(i) for i in range(300)])
    assert [(p.min_time, p.max_time, p.count) for p in parts] == [
        (0, 119 * 60_000, 120),
        (120 * 60_000, 239 * 60_000, 120),
        (240 * 60_000, 299 * 60_000, 60),
    ]


def test_every_truncation_is_detected() -> None:
    data = encode_chunk(range(0, 50_000, 1000), [float(i * i) for i in range(50)])
    for size in range(len(data)):
        with pytest.raises(ChunkDecodeError, match="invalid XOR chunk"):
            decode_chunk(data[:size])


def test_bytes_after_the_last_sample_are_ignored_as_in_prometheus() -> None:
    assert decoded(GOLDEN_3 + b"\xff\xff") == decoded(GOLDEN_3)


def test_any_bytes_like_object_decodes() -> None:
    assert decoded(bytearray(GOLDEN_4)) == decoded(memoryview(GOLDEN_4)) == decoded(GOLDEN_4)


def test_corrupt_data_raises_a_clear_error() -> None:
    with pytest.raises(ChunkDecodeError, match="first timestamp overflows 64 bits") as caught:
        decode_chunk(b"\x00\x01" + b"\xff" * 10 + b"\x02")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ChunkDecodeError, match="ends inside the first value"):
        decode_chunk(b"\x00\x01\x02\x00")
    # sample 1: "11", 31 leading zeros, 64 significant bits
    window = int("11" + "11111" + "000000" + "0" * 19, 2).to_bytes(4, "big")
    message = r"31 leading zeros plus 64 significant bits exceed 64 \(at sample 1\)"
    with pytest.raises(ChunkDecodeError, match=message) as caught:
        decode_chunk(b"\x00\x02\x02" + bytes(8) + b"\x01" + window + bytes(8))
    assert caught.value.sample == 1
