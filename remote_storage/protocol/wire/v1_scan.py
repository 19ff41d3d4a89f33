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

from remote_storage import native

__all__ = ["Columns", "Scanned", "columns", "scan"]

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
