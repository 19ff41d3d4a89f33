"""A fast path for remote write 1.0: scan the wire bytes instead of building messages.

Prometheus sends one sample per ``TimeSeries`` entry, each with its full
label set, so a request of 2,000 samples carries 2,000 label sets. Building a
Python object for every label of every entry costs more than everything else
the service does with a sample. This scanner walks the protobuf bytes with
plain integer arithmetic and keeps, per entry, only the *encoded label bytes*
(used as the series key: identical bytes are the same series) and the
sample's timestamp and value. Label strings are decoded, by the protobuf
runtime, only the first time a key is seen in a request.

The scanner understands exactly the shape Prometheus and other ordinary
senders produce: in each entry the labels first, then samples, each sample a
value and/or a timestamp. Anything else (exemplars, histograms, fields in
another order, unknown fields, malformed bytes) makes :func:`scan` return
None, and the caller decodes the body with the protobuf runtime instead, so
both paths give the same result for every body.

An :class:`Interner` keeps a number for each encoded label set it was given
and scans a body into the rows' numbers (:meth:`Interner.columns`): in C the
label bytes of a known key never become a Python object, only those of keys
it does not know yet.

There are two implementations of the scanner, with the same results for
every input: a C extension, ``remote_storage.protocol.wire._v1scan``, which
``pip install`` builds when a C compiler is available, and the pure-Python
scanner below. :mod:`remote_storage.native` loads the extension and decides,
once, which runs (:data:`remote_storage.native.IMPLEMENTATION`).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from itertools import repeat
from typing import Protocol

from remote_storage import native

__all__ = ["Columns", "Interner", "NumberedColumns", "Scanned", "columns", "new_interner", "scan"]

_unpack_double = struct.Struct("<d").unpack_from
_SIGN = 1 << 63
_WRAP = 1 << 64

# Top-level WriteRequest field tags (field << 3 | wire type 2).
_TIMESERIES = 0x0A
_METADATA = 0x1A
# TimeSeries field tags.
_LABEL = 0x0A
_SAMPLE = 0x12
# Sample field tags: value (double), timestamp (varint).
_VALUE = 0x09
_TIMESTAMP = 0x10


class Scanned:
    """Samples grouped by encoded label set, in first-seen order, plus raw metadata."""

    __slots__ = ("metadata", "series")

    def __init__(
        self,
        series: dict[bytes, tuple[list[int], list[float]]] | None = None,
        metadata: list[bytes] | None = None,
    ) -> None:
        # key bytes -> (timestamps, values); lists: most series have one sample
        self.series = {} if series is None else series
        self.metadata = [] if metadata is None else metadata


class Columns:
    """A body whose every entry holds one sample, as columns: one row per entry, in order.

    ``keys[i]`` is the encoded label bytes of entry ``i``; ``timestamps`` and
    ``values`` pack the entries' samples as native int64 and float64 (read
    them through ``memoryview(...).cast("q")`` / ``cast("d")``).
    """

    __slots__ = ("keys", "metadata", "timestamps", "values")

    def __init__(self, keys: list[bytes], timestamps: bytes, values: bytes, metadata: list[bytes]) -> None:
        self.keys = keys
        self.timestamps = timestamps
        self.values = values
        self.metadata = metadata


class NumberedColumns:
    """:class:`Columns` with each row's key replaced by its number in an :class:`Interner`.

    ``numbers`` packs one native int64 per row: the key's number, or 0 when
    the interner does not know the key; ``missing`` lists ``(row, key bytes)``
    for exactly those rows, in row order.
    """

    __slots__ = ("metadata", "missing", "numbers", "timestamps", "values")

    def __init__(
        self,
        numbers: bytes,
        missing: list[tuple[int, bytes]],
        timestamps: bytes,
        values: bytes,
        metadata: list[bytes],
    ) -> None:
        self.numbers = numbers
        self.missing = missing
        self.timestamps = timestamps
        self.values = values
        self.metadata = metadata

    def __len__(self) -> int:
        return len(self.timestamps) // 8


class Interner(Protocol):
    """Encoded label sets (bytes) -> positive numbers; make one with :func:`new_interner`."""

    def columns(self, buf: bytes, /) -> NumberedColumns | None:
        """:func:`columns` of ``buf`` with each row's key looked up; None when columns() gives None."""

    def add(self, key: bytes, number: int, /) -> None:
        """Give ``key`` the ``number`` (positive), replacing any it had."""

    def clear(self) -> None:
        """Forget every key."""

    def __len__(self) -> int: ...


class _PyInterner:
    """:class:`Interner` in Python: a dict over :func:`_py_columns`."""

    def __init__(self) -> None:
        self._numbers: dict[bytes, int] = {}

    def columns(self, buf: bytes, /) -> NumberedColumns | None:
        found = _py_columns(buf)
        if found is None:
            return None
        numbers = array("q", map(self._numbers.get, found.keys, repeat(0)))
        missing = [
            (row, key)
            for row, (key, number) in enumerate(zip(found.keys, numbers, strict=True))
            if not number
        ]
        return NumberedColumns(numbers.tobytes(), missing, found.timestamps, found.values, found.metadata)

    def add(self, key: bytes, number: int, /) -> None:
        if number <= 0:
            raise ValueError("numbers are positive")
        self._numbers[key] = number

    def clear(self) -> None:
        self._numbers.clear()

    def __len__(self) -> int:
        return len(self._numbers)


class _CInterner:
    """:class:`Interner` over the C table of ``_v1scan.Interner``."""

    __slots__ = ("_table",)

    def __init__(self, table: native.V1Interner) -> None:
        self._table = table

    def columns(self, buf: bytes, /) -> NumberedColumns | None:
        found = self._table.columns(buf)
        return None if found is None else NumberedColumns(*found)

    def add(self, key: bytes, number: int, /) -> None:
        self._table.add(key, number)

    def clear(self) -> None:
        self._table.clear()

    def __len__(self) -> int:
        return len(self._table)


def _py_columns(buf: bytes) -> Columns | None:
    """:func:`columns` in Python, on top of the dict scan, which also lists the entries in order."""
    if type(buf) is not bytes:
        buf = memoryview(buf).cast("B").tobytes()
    entries: list[tuple[bytes, int]] = []
    try:
        scanned = _scan(buf, entries)
    except IndexError:
        return None
    if scanned is None:
        return None
    timestamps: array[int] = array("q")
    values: array[float] = array("d")
    seen: dict[bytes, int] = {}
    for key, count in entries:  # count: the key's samples so far, this entry's included
        if count - seen.get(key, 0) != 1:
            return None
        seen[key] = count
        ts, vs = scanned.series[key]
        timestamps.append(ts[count - 1])
        values.append(vs[count - 1])
    return Columns([key for key, _ in entries], timestamps.tobytes(), values.tobytes(), scanned.metadata)


def _py_scan(buf: bytes) -> Scanned | None:
    """Scan a ``prometheus.WriteRequest`` body; None when it is not of the simple shape."""
    if type(buf) is not bytes:  # a bytearray or memoryview: keys must be bytes, as from C
        buf = memoryview(buf).cast("B").tobytes()  # cast: refuse what is not contiguous
    try:
        return _scan(buf)
    except IndexError:  # truncated: let the protobuf runtime report it
        return None


def _scan(buf: bytes, entries: list[tuple[bytes, int]] | None = None) -> Scanned | None:  # one flat loop
    """The scan; ``entries`` (if given) gets, per entry, its key and the key's sample count after it."""
    result = Scanned()
    series = result.series
    end = len(buf)
    i = 0
    while i < end:
        tag = buf[i]
        # length of a length-delimited field (varint)
        length = buf[i + 1]
        i += 2
        if length & 0x80:
            length &= 0x7F
            shift = 7
            while True:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 35:
                    return None
        stop = i + length
        if stop > end:
            return None
        if tag == _METADATA:
            result.metadata.append(buf[i:stop])
            i = stop
            continue
        if tag != _TIMESERIES:
            return None
        # labels: contiguous field-1 records at the start of the entry
        start = i
        while i < stop and buf[i] == _LABEL:
            size = buf[i + 1]
            if size & 0x80:
                j = i + 1
                size = 0
                shift = 0
                while True:
                    byte = buf[j]
                    j += 1
                    size |= (byte & 0x7F) << shift
                    if byte < 0x80:
                        break
                    shift += 7
                    if shift > 35:
                        return None
                i = j + size
            else:
                i += 2 + size
        if i > stop:
            return None
        key = buf[start:i]
        entry = series.get(key)
        if entry is None:
            entry = series[key] = ([], [])
        timestamps, values = entry
        # samples
        while i < stop:
            if buf[i] != _SAMPLE:
                return None
            size = buf[i + 1]
            if size & 0x80:
                return None  # a sample is at most 20 bytes
            i += 2
            sample_end = i + size
            if sample_end > stop:
                return None
            value = 0.0
            timestamp = 0
            while i < sample_end:
                field = buf[i]
                if field == _VALUE:
                    if i + 9 > sample_end:
                        return None
                    value = _unpack_double(buf, i + 1)[0]
                    i += 9
                elif field == _TIMESTAMP:
                    i += 1
                    timestamp = 0
                    shift = 0
                    while True:
                        byte = buf[i]
                        i += 1
                        timestamp |= (byte & 0x7F) << shift
                        if byte < 0x80:
                            break
                        shift += 7
                        if shift > 63:
                            return None
                    if i > sample_end:
                        return None
                else:
                    return None
            if timestamp >= _SIGN:
                if timestamp >= _WRAP:
                    return None
                timestamp -= _WRAP
            timestamps.append(timestamp)
            values.append(value)
        if entries is not None:
            entries.append((key, len(timestamps)))
    return result


_Scan = Callable[[bytes], Scanned | None]
_Columns = Callable[[bytes], Columns | None]


def _c_functions(scanner: native.V1Scanner) -> tuple[_Scan, _Columns]:
    def _c_scan(buf: bytes) -> Scanned | None:
        """Scan a ``prometheus.WriteRequest`` body; None when it is not of the simple shape."""
        found = scanner.scan(buf)
        return None if found is None else Scanned(*found)

    def _c_columns(buf: bytes) -> Columns | None:
        """Columns of a body whose every entry holds one sample; None for any other body."""
        found = scanner.columns(buf)
        return None if found is None else Columns(*found)

    return _c_scan, _c_columns


# Both stay importable for the tests, which run them side by side.
_c_scan, _c_columns = _c_functions(native.v1scan) if native.v1scan is not None else (None, None)
scan: _Scan
columns: _Columns
if native.IMPLEMENTATION == "c" and _c_scan is not None and _c_columns is not None:
    scan, columns = _c_scan, _c_columns
else:
    scan, columns = _py_scan, _py_columns


def new_interner() -> Interner:
    """An empty :class:`Interner`: the C table when the C implementation runs, else a dict."""
    if native.IMPLEMENTATION == "c" and native.v1scan is not None:
        return _CInterner(native.v1scan.Interner())
    return _PyInterner()
