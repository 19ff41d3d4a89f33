"""XOR (Gorilla) float chunks, byte for byte as Prometheus writes them (``chunkenc.XORChunk``).

A chunk is a 2-byte big-endian sample count followed by a bit stream: the
first timestamp as a zig-zag varint, the second as a uvarint delta, the rest as
delta-of-deltas in 1, 16, 20, 24 or 68 bits; values are XORed with the previous
value's 64 bits and written as a control code plus the significant bits
(PROTOCOL.md, section 5). Values are handled as 64-bit patterns only, never by
float arithmetic, so the stale marker (``0x7ff0000000000002``), other NaN
payloads, -0.0 and the infinities survive bit for bit.

Remote read streams these chunks (``STREAMED_XOR_CHUNKS``); a backend may keep
one open :class:`XORChunkEncoder` per series and store the closed chunks as they
are::

    >>> from remote_storage.chunks import decode_chunk, encode_chunk, split_into_chunks
    >>> data = encode_chunk([1000, 2000, 3000], [1.0, 2.0, 3.0])
    >>> data.hex(" ")
    '00 03 d0 0f 3f f0 00 00 00 00 00 00 e8 07 c2 5f ff 6c 06'
    >>> timestamps, values = decode_chunk(data)
    >>> list(timestamps), list(values)
    ([1000, 2000, 3000], [1.0, 2.0, 3.0])
    >>> [(c.min_time, c.max_time, c.count) for c in split_into_chunks(range(0, 5000, 1000), [0.0] * 5, 2)]
    [(0, 1000, 2), (2000, 3000, 2), (4000, 4000, 1)]

The format leaves the encoder one choice: whether a value keeps the window
of significant bits of the value before (when it fits) or starts a new one.
:func:`encode_chunk` chooses as Prometheus does, keeping a window as long as
the values fit, which is what the golden bytes of the protocol show.
:func:`pack_chunk` chooses the windows that make the chunk smallest; any XOR
decoder reads its chunks back, and counters and gauges take about a tenth
fewer bytes.

There are two implementations of :func:`encode_chunk`, :func:`pack_chunk`
and :func:`decode_chunk` (and so of :func:`split_into_chunks`), with the
same results for every input:
the C extension ``remote_storage._xor``, which ``pip install`` builds when a
C compiler is available, and the pure Python below, the reference.
:mod:`remote_storage.native` loads the extension and decides, once, which
runs (:data:`remote_storage.native.IMPLEMENTATION`). The C functions hand
every error case (unordered timestamps, too many samples, a malformed chunk)
back to the Python code, so the errors and their messages are the same in
both.

The Python code is written for throughput: bits are gathered in Python ints
and moved as whole bytes, zero counts come from ``int.bit_length``, and the
decoder reads fields out of a 64-byte window that slides along the stream.
:class:`XORChunkEncoder`, which grows a chunk a sample at a time, exists only
in Python.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import islice, repeat
from operator import index
from typing import TypeAlias

from remote_storage import native
from remote_storage.storage import EncodedChunk, float_bits
from remote_storage.varint import encode_uvarint

__all__ = [
    "MAX_SAMPLES",
    "SAMPLES_PER_CHUNK",
    "ChunkDecodeError",
    "XORChunkEncoder",
    "as_columns",
    "chunk_samples",
    "decode_chunk",
    "encode_chunk",
    "encode_for_storage",
    "pack_chunk",
    "split_into_chunks",
]

#: The most samples one chunk can hold: its count is a uint16.
MAX_SAMPLES = 0xFFFF
#: Samples per chunk that Prometheus' head cuts at, and the default of :func:`split_into_chunks`.
SAMPLES_PER_CHUNK = 120

#: What :func:`decode_chunk` accepts.
BytesLike = bytes | bytearray | memoryview

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MASK = (1 << 64) - 1
_SIGN64 = 1 << 63
_UNSET = 0xFF  # "no window yet", as in Prometheus: larger than any leading-zero count
_FLUSH_BITS = 512  # the encoder moves its pending bits into bytes once it holds this many
_WINDOW_BYTES = 64  # the decoder's window on the stream
_WINDOW_BITS = 8 * _WINDOW_BYTES
_MAX_SAMPLE_BITS = 4 + 64 + 2 + 5 + 6 + 64  # the widest timestamp field plus the widest value field
_PADDING = bytes(_WINDOW_BYTES)


class ChunkDecodeError(ValueError):
    """The bytes are not a valid XOR chunk: ``reason`` says what is wrong, ``sample`` where."""

    def __init__(self, reason: str, sample: int | None = None) -> None:
        where = "" if sample is None else f" (at sample {sample})"
        super().__init__(f"invalid XOR chunk: {reason}{where}")
        self.reason = reason
        self.sample = sample


def _dod_field(dod: int) -> tuple[int, int]:
    """The bits and bit count of any delta-of-delta, wrapped to int64 first as Go does."""
    dod = ((dod + _SIGN64) & _UINT64_MASK) - _SIGN64
    if dod == 0:
        return 0, 1
    if -8191 <= dod <= 8192:
        return 0b10 << 14 | (dod & 0x3FFF), 16
    if -65535 <= dod <= 65536:
        return 0b110 << 17 | (dod & 0x1FFFF), 20
    if -524287 <= dod <= 524288:
        return 0b1110 << 20 | (dod & 0xFFFFF), 24
    return 0b1111 << 64 | (dod & _UINT64_MASK), 68


def _first_unordered(timestamps: Sequence[int], previous: int | None) -> int:
    """Index of the first timestamp not above the one before it (the caller knows there is one)."""
    for i, t in enumerate(timestamps):
        if previous is not None and t <= previous:
            return i
        previous = t
    raise AssertionError("no unordered timestamp")  # pragma: no cover


def _unordered(position: int, t: int, before: int) -> ValueError:
    return ValueError(
        f"timestamps must be strictly increasing: sample {position} has timestamp {t} after {before}; "
        "sort the samples and drop duplicates first"
    )


def _samples(timestamps: Iterable[int], values: Iterable[float]) -> tuple[array[int], array[int]]:
    """Timestamps as ``array('q')`` and the values' bit patterns as ``array('Q')``, checked to pair up."""
    ts = _as_timestamps(timestamps)
    bits = _as_value_bits(values)
    if len(ts) != len(bits):
        raise _unpaired(len(ts), len(bits))
    return ts, bits


def _unpaired(timestamps: int, values: int) -> ValueError:
    return ValueError(f"{timestamps} timestamps but {values} values: they must pair up")


def _as_timestamps(timestamps: Iterable[int]) -> array[int]:
    if isinstance(timestamps, array) and timestamps.typecode == "q":
        return timestamps
    try:
        return array("q", timestamps)
    except OverflowError:
        raise ValueError("timestamps must be int64 milliseconds") from None


def _as_values(values: Iterable[float]) -> array[float]:
    if isinstance(values, array) and values.typecode == "d":
        return values
    return array("d", values)


def as_columns(timestamps: Iterable[int], values: Iterable[float]) -> tuple[array[int], array[float]]:
    """Samples as ``array('q')`` timestamps and ``array('d')`` values, the columns the C codec takes.

    Arrays of those types are returned as they are, anything else is copied
    into one; a timestamp outside int64 is a ValueError.
    """
    return _as_timestamps(timestamps), _as_values(values)


def _as_value_bits(values: Iterable[float]) -> array[int]:
    bits = array("Q")
    bits.frombytes(memoryview(_as_values(values)).cast("B"))
    return bits


class XORChunkEncoder:
    """An open XOR chunk that grows one sample (:meth:`append`) or many (:meth:`extend`) at a time.

    :meth:`bytes` returns the chunk so far at any moment, without closing it;
    the bytes equal :func:`encode_chunk` of the same samples. Timestamps must
    be strictly increasing int64 milliseconds; a rejected call changes nothing.

    >>> encoder = XORChunkEncoder()
    >>> encoder.append(7_200_000, 12000.0)
    >>> encoder.bytes().hex(" "), encoder.count, encoder.min_time, encoder.max_time
    ('00 01 80 f4 ee 06 40 c7 70 00 00 00 00 00', 1, 7200000, 7200000)
    """

    __slots__ = (
        "_acc",
        "_count",
        "_delta",
        "_leading",
        "_min_time",
        "_nacc",
        "_out",
        "_t",
        "_trailing",
        "_v",
    )

    def __init__(self) -> None:
        self._out = bytearray()  # the stream after the count, in whole bytes
        self._acc = 0  # bits not yet in _out, the last written lowest
        self._nacc = 0
        self._count = 0
        self._min_time = 0
        self._t = 0  # last timestamp, last delta (exact, > 0), last value's bits
        self._delta = 0
        self._v = 0
        self._leading = _UNSET
        self._trailing = 0

    @property
    def count(self) -> int:
        """Number of samples in the chunk."""
        return self._count

    @property
    def min_time(self) -> int:
        """Timestamp of the first sample; ValueError while the chunk is empty."""
        if not self._count:
            raise ValueError("the chunk is empty: it has no min_time")
        return self._min_time

    @property
    def max_time(self) -> int:
        """Timestamp of the last sample; ValueError while the chunk is empty."""
        if not self._count:
            raise ValueError("the chunk is empty: it has no max_time")
        return self._t

    def bytes(self) -> bytes:
        """The whole chunk so far, including its 2-byte sample count."""
        nacc = self._nacc
        pad = -nacc & 7
        tail = (self._acc << pad).to_bytes((nacc + pad) >> 3, "big")
        return b"".join((self._count.to_bytes(2, "big"), self._out, tail))

    def chunk(self) -> EncodedChunk:
        """The chunk so far as an :class:`~remote_storage.storage.EncodedChunk`; ValueError while empty."""
        return EncodedChunk(self.min_time, self.max_time, self.bytes())

    def append(self, t: int, v: float) -> None:
        """Add one sample; ``t`` must be above the last timestamp and fit int64."""
        t = index(t)
        if not _INT64_MIN <= t <= _INT64_MAX:
            raise ValueError(f"timestamp {t} does not fit int64 milliseconds")
        self._extend((t,), (float_bits(v),), self._count)

    def extend(self, timestamps: Iterable[int], values: Iterable[float]) -> None:
        """Add samples in order; all are added or, on ValueError, none."""
        self._extend(*_samples(timestamps, values), 0)

    def _extend(
        self, ts: Sequence[int], bits: Sequence[int], first_index: int, plan: Iterable[int] = repeat(0)
    ) -> None:
        """Encode samples given as int64 timestamps and value bit patterns (the hot path).

        ``plan`` forces windows (:func:`_plan_windows`, for :func:`pack_chunk`):
        one item per sample, ``_FORCED | (leading << 6) | trailing`` for a
        value that starts that window, 0 where the greedy choice stands.
        """
        n = len(ts)
        count = self._count
        if count + n > MAX_SAMPLES:
            raise ValueError(
                f"a chunk holds at most {MAX_SAMPLES} samples; it has {count} and {n} more were given: "
                "cut it into smaller chunks (split_into_chunks)"
            )
        if not n:
            return
        out = self._out
        mark = len(out)
        start = 0
        t, delta, v = self._t, self._delta, self._v
        leading, trailing = self._leading, self._trailing
        acc, nacc = self._acc, self._nacc
        flush_bits = _FLUSH_BITS
        if count == 0:
            t, v = ts[0], bits[0]
            out += encode_uvarint(((t << 1) ^ (t >> 63)) & _UINT64_MASK)
            out += v.to_bytes(8, "big")
            start = 1
        if count + start == 1 and n > start:
            # Sample 1's timestamp is a uvarint, and the stream is byte-aligned here.
            # Seeding delta with it lets the loop below write its dod 0 as the one
            # bit "0", which the bit count of -1 then takes back.
            delta = ts[start] - t
            if delta <= 0:
                del out[mark:]
                raise self._unordered_error(ts, first_index)
            out += encode_uvarint(delta)
            nacc = -1
        rest_ts, rest_bits = ts, bits
        if start:
            rest_ts, rest_bits, plan = ts[start:], bits[start:], islice(plan, start, None)
        # ts and bits pair up (checked before); plan may be endless
        for tn, vn, forced in zip(rest_ts, rest_bits, plan, strict=False):
            d = tn - t
            if d <= 0:
                break
            dod = d - delta
            if dod == 0:
                b = 0
                nb = 1
            elif -8191 <= dod <= 8192:
                b = 0x8000 | (dod & 0x3FFF)
                nb = 16
            else:
                b, nb = _dod_field(dod)
            x = vn ^ v
            if x == 0:
                b <<= 1
                nb += 1
            else:
                lz = 64 - x.bit_length()
                if lz > 31:
                    lz = 31
                tz = (x & -x).bit_length() - 1
                if lz >= leading and tz >= trailing and not forced:
                    sig = 64 - leading - trailing
                    b = (((b << 2) | 2) << sig) | (x >> trailing)
                    nb += 2 + sig
                else:
                    if forced:
                        lz, tz = (forced >> 6) & 31, forced & 63
                    leading = lz
                    trailing = tz
                    sig = 64 - lz - tz
                    b = (((b << 13) | 0x1800 | (lz << 6) | (sig & 63)) << sig) | (x >> tz)
                    nb += 13 + sig
            acc = (acc << nb) | b
            nacc += nb
            if nacc >= flush_bits:
                rest = nacc & 7
                out += (acc >> rest).to_bytes(nacc >> 3, "big")
                acc &= (1 << rest) - 1
                nacc = rest
            t = tn
            delta = d
            v = vn
        else:
            if count == 0:
                self._min_time = ts[0]
            self._count = count + n
            self._t, self._delta, self._v = t, delta, v
            self._leading, self._trailing = leading, trailing
            self._acc, self._nacc = acc, nacc
            return
        del out[mark:]
        raise self._unordered_error(ts, first_index)

    def _unordered_error(self, ts: Sequence[int], first_index: int) -> ValueError:
        i = _first_unordered(ts, self._t if self._count else None)
        return _unordered(first_index + i, ts[i], ts[i - 1] if i else self._t)


def _py_encode_chunk(timestamps: Iterable[int], values: Iterable[float]) -> bytes:
    """Encode samples as one XOR chunk, including its 2-byte sample count.

    Timestamps must be strictly increasing int64 milliseconds, at most
    :data:`MAX_SAMPLES` of them, paired with ``values``; anything else is a
    ValueError. ``array('q')``/``array('d')`` arguments skip the conversion of each item.

    >>> encode_chunk([7_200_000], [12000.0]).hex(" ")
    '00 01 80 f4 ee 06 40 c7 70 00 00 00 00 00'
    """
    encoder = XORChunkEncoder()
    encoder.extend(timestamps, values)
    return encoder.bytes()


#: How far back :func:`pack_chunk` looks for the start of a window, in values
#: that differ from the one before them (``PLAN_LOOKBACK`` in ``_xor.c``).
_PLAN_LOOKBACK = 32
#: The flag of a forced window in a plan (a window may be all zeros: leading 0, trailing 0).
_FORCED = 0x8000


def _plan_windows(bits: Sequence[int]) -> list[int]:
    """The windows :func:`pack_chunk` forces, one item per value (see ``XORChunkEncoder._extend``).

    A value that differs from the one before costs 2 bits plus the window's
    width when it keeps the current window, and 13 bits plus the width when it
    starts a new one; a window must cover every value it carries. The fewest
    bits are therefore the cheapest cut of those values into runs, each
    written with the narrowest window that covers all of it. ``cost[j]`` is
    the fewest bits for the first ``j`` such values, found over where the
    last run starts (at most :data:`_PLAN_LOOKBACK` values back); ties go to
    the latest start, as in the C twin.
    """
    plan = [0] * len(bits)
    where: list[int] = []
    zeros: list[tuple[int, int]] = []
    for i in range(1, len(bits)):
        x = bits[i] ^ bits[i - 1]
        if x:
            where.append(i)
            zeros.append((min(64 - x.bit_length(), 31), (x & -x).bit_length() - 1))
    cost = [0]
    run = [0]
    window = [0]
    for j in range(1, len(zeros) + 1):
        leading, trailing, best = 31, 63, -1
        for i in range(j - 1, max(j - _PLAN_LOOKBACK, 0) - 1, -1):
            lz, tz = zeros[i]
            leading = min(leading, lz)
            trailing = min(trailing, tz)
            bits_used = cost[i] + 11 + (j - i) * (66 - leading - trailing)
            if best < 0 or bits_used < best:
                best, start, forced = bits_used, i, _FORCED | (leading << 6) | trailing
        cost.append(best)
        run.append(start)
        window.append(forced)
    j = len(zeros)
    while j:
        plan[where[run[j]]] = window[j]
        j = run[j]
    return plan


def _py_pack_chunk(timestamps: Iterable[int], values: Iterable[float]) -> bytes:
    """Encode samples as the smallest XOR chunk :func:`decode_chunk` (and Prometheus) reads back.

    The same samples as :func:`encode_chunk` writes, and a valid chunk for
    every XOR decoder, but each run of values is written with the narrowest
    window that covers it, where Prometheus' encoder keeps a window as long as
    the values fit it. The arguments and errors are those of
    :func:`encode_chunk`; it costs more time, and saves about a tenth of the
    bytes of counters and gauges. The values take the fewest bits any XOR
    stream can give them, but for one bound: a window is kept for at most
    32 changed values, which costs 11 bits per further 32 values that one
    window would have carried.

    >>> values = [0.0, 1.0, 2.0, 3.0, 1e300, 1e300 + 1e284, 1e300 + 2e284]
    >>> len(pack_chunk(range(0, 7000, 1000), values)) < len(encode_chunk(range(0, 7000, 1000), values))
    True
    """
    ts, bits = _samples(timestamps, values)
    encoder = XORChunkEncoder()
    encoder._extend(ts, bits, 0, _plan_windows(bits))
    return encoder.bytes()


def split_into_chunks(
    timestamps: Iterable[int],
    values: Iterable[float],
    max_samples: int = SAMPLES_PER_CHUNK,
    *,
    encode: _Encode | None = None,
) -> list[EncodedChunk]:
    """Cut a series into consecutive chunks of at most ``max_samples`` samples each.

    Timestamps must be strictly increasing across the whole series. The
    chunks' samples, concatenated, are the input; no samples gives no chunks.
    ``encode`` writes each chunk (:func:`encode_chunk` when None; for example
    :func:`pack_chunk` or :func:`encode_for_storage`).
    """
    if not 1 <= max_samples <= MAX_SAMPLES:
        raise ValueError(f"max_samples must be between 1 and {MAX_SAMPLES}, got {max_samples}")
    ts, vs = as_columns(timestamps, values)
    if len(ts) != len(vs):
        raise _unpaired(len(ts), len(vs))
    if encode is None:
        encode = encode_chunk
    chunks = []
    for lo in range(0, len(ts), max_samples):
        hi = min(lo + max_samples, len(ts))
        if lo and ts[lo] <= ts[lo - 1]:
            raise _unordered(lo, ts[lo], ts[lo - 1])
        try:
            data = encode(ts[lo:hi], vs[lo:hi])
        except ValueError:  # unordered inside the piece: say where in the whole series
            i = lo + _first_unordered(ts[lo:hi], None)
            raise _unordered(i, ts[i], ts[i - 1]) from None
        chunks.append(EncodedChunk(ts[lo], ts[hi - 1], data))
    return chunks


def _read_uvarint(data: bytes, pos: int, what: str, sample: int) -> tuple[int, int]:
    """Go's ``binary.ReadUvarint``: the value and the position after it."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ChunkDecodeError(f"the data ends inside the {what}", sample)
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            break
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise ChunkDecodeError(f"the {what} overflows 64 bits", sample)


def chunk_samples(data: BytesLike) -> int:
    """The number of samples a chunk holds (its 2-byte big-endian header)."""
    return int.from_bytes(bytes(data[:2]), "big")


def _py_decode_chunk(data: BytesLike) -> tuple[array[int], array[float]]:
    """Decode an XOR chunk into ``array('q')`` timestamps and ``array('d')`` values.

    Reads exactly the number of samples in the chunk's header and ignores any
    bytes after them, as Prometheus does. Arrays are returned because they
    are built in bulk (faster than lists) and are compact; ``tolist()`` gives
    lists. Raises :class:`ChunkDecodeError` for truncated or corrupt data.

    >>> ts, vs = decode_chunk(bytes.fromhex("0001 80f4ee06 40c7700000000000"))
    >>> ts.tolist(), vs.tolist()
    ([7200000], [12000.0])
    """
    data = bytes(data)
    size = len(data)
    if size < 2:
        raise ChunkDecodeError(f"{size} bytes is shorter than the 2-byte sample count")
    count = data[0] << 8 | data[1]
    if count == 0:
        return array("q"), array("d")
    zigzag, pos = _read_uvarint(data, 2, "first timestamp", 0)
    t = (zigzag >> 1) ^ -(zigzag & 1)
    if pos + 8 > size:
        raise ChunkDecodeError("the data ends inside the first value", 0)
    v = int.from_bytes(data[pos : pos + 8], "big")
    times = [t]
    vbits = [v]
    if count > 1:
        delta, pos = _read_uvarint(data, pos + 8, "second timestamp", 1)
        _decode_tail(data, pos, count - 1, t, delta, v, times, vbits)
    try:
        timestamps = array("q", times)
    except OverflowError:  # deltas of 2**63 and more: wrap around as Go's int64 does
        timestamps = array("q", [((t + _SIGN64) & _UINT64_MASK) - _SIGN64 for t in times])
    values = array("d")
    values.frombytes(memoryview(array("Q", vbits)).cast("B"))
    return timestamps, values


def _decode_tail(
    data: bytes, pos: int, n: int, t: int, delta: int, v: int, times: list[int], vbits: list[int]
) -> None:
    """Decode samples 1.. from byte ``pos`` (sample 1's value onwards), appending to the lists."""
    padded = data + _PADDING
    win = int.from_bytes(padded[pos : pos + _WINDOW_BYTES], "big")
    # Bits left below the read position; one more than the window holds puts a
    # virtual 0 bit in front: sample 1's timestamp (a uvarint, already read as
    # delta) then decodes in the loop as dod 0.
    rem = _WINDOW_BITS + 1
    trailing = 0  # as in Prometheus' reader: a window reused before any "11" is 64 bits wide
    sig = 64
    mask = _UINT64_MASK
    size = len(data)
    need = _MAX_SAMPLE_BITS
    times_append = times.append
    vbits_append = vbits.append
    for i in range(1, n + 1):
        if rem < need:
            used = _WINDOW_BITS - rem
            pos += used >> 3
            if pos >= size:
                raise ChunkDecodeError("the data ends before the last sample", i)
            win = int.from_bytes(padded[pos : pos + _WINDOW_BYTES], "big")
            rem = _WINDOW_BITS - (used & 7)
        code = (win >> (rem - 4)) & 15
        if code < 8:
            rem -= 1
        elif code < 12:
            rem -= 16
            dod = (win >> rem) & 0x3FFF
            delta += dod - 0x4000 if dod > 0x2000 else dod
        elif code < 14:
            rem -= 20
            dod = (win >> rem) & 0x1FFFF
            delta += dod - 0x20000 if dod > 0x10000 else dod
        elif code == 14:
            rem -= 24
            dod = (win >> rem) & 0xFFFFF
            delta += dod - 0x100000 if dod > 0x80000 else dod
        else:
            rem -= 68
            dod = (win >> rem) & _UINT64_MASK
            delta += dod - 0x10000000000000000 if dod & _SIGN64 else dod
        t += delta
        times_append(t)
        code = (win >> (rem - 2)) & 3
        if code < 2:
            rem -= 1
        else:
            if code == 3:
                rem -= 13
                field = (win >> rem) & 0x7FF
                sig = (field & 63) or 64
                trailing = 64 - (field >> 6) - sig
                if trailing < 0:
                    raise ChunkDecodeError(
                        f"{field >> 6} leading zeros plus {sig} significant bits exceed 64", i
                    )
                mask = (1 << sig) - 1
            else:
                rem -= 2
            rem -= sig
            v ^= ((win >> rem) & mask) << trailing
        vbits_append(v)
    if 8 * pos + _WINDOW_BITS - rem > 8 * size:
        raise ChunkDecodeError("the data ends before the last sample", n)


# -- the choice of implementation ----------------------------------------------------

_Encode: TypeAlias = Callable[[Iterable[int], Iterable[float]], bytes]
_Decode: TypeAlias = "Callable[[BytesLike], tuple[array[int], array[float]]]"


def _c_functions(codec: native.XorCodec) -> tuple[_Encode, _Encode, _Decode]:
    def _c_encode_chunk(timestamps: Iterable[int], values: Iterable[float]) -> bytes:
        ts, vs = as_columns(timestamps, values)
        data = codec.encode_chunk(ts, vs)
        return _py_encode_chunk(ts, vs) if data is None else data

    def _c_pack_chunk(timestamps: Iterable[int], values: Iterable[float]) -> bytes:
        ts, vs = as_columns(timestamps, values)
        data = codec.pack_chunk(ts, vs)
        return _py_pack_chunk(ts, vs) if data is None else data

    def _c_decode_chunk(data: BytesLike) -> tuple[array[int], array[float]]:
        found = codec.decode_chunk(data)
        return _py_decode_chunk(data) if found is None else found

    _c_encode_chunk.__doc__ = _py_encode_chunk.__doc__
    _c_pack_chunk.__doc__ = _py_pack_chunk.__doc__
    _c_decode_chunk.__doc__ = _py_decode_chunk.__doc__
    return _c_encode_chunk, _c_pack_chunk, _c_decode_chunk


# The C functions exist whenever the extension is built (the tests run both side by side).
_c_encode_chunk, _c_pack_chunk, _c_decode_chunk = (
    _c_functions(native.xor) if native.xor is not None else (None, None, None)
)
encode_chunk: _Encode
pack_chunk: _Encode
decode_chunk: _Decode
if native.IMPLEMENTATION == "c" and _c_encode_chunk and _c_pack_chunk and _c_decode_chunk:
    encode_chunk, pack_chunk, decode_chunk = _c_encode_chunk, _c_pack_chunk, _c_decode_chunk
else:
    encode_chunk, pack_chunk, decode_chunk = _py_encode_chunk, _py_pack_chunk, _py_decode_chunk

#: The encoder of the chunks backends keep: :func:`pack_chunk` with the C
#: extension, where packing takes about 40 ns a sample (6 times what
#: :func:`encode_chunk` takes); :func:`encode_chunk` in pure Python, where
#: packing takes 20 times what encoding does, about 10 µs a sample.
encode_for_storage: _Encode = pack_chunk if native.IMPLEMENTATION == "c" else encode_chunk
