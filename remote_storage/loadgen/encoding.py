"""Request templates: a compressed remote-write body with its labels encoded once and slots for samples.

Encoding 2,000 series with the protobuf runtime and compressing the result
takes milliseconds; rendering a :class:`Template` takes a fraction of one.
Every sample has the same width on the wire: ``12 10`` (``samples``, 16
bytes), ``09`` + 8 value bytes, ``10`` + the timestamp as a 6-byte varint
(every millisecond timestamp from 1971 to 2109 takes 6 bytes). So a
template is the body's fixed bytes (labels, tags, lengths, v2 symbols and
metadata), snappy-compressed once by :func:`~.splice.splice` with a
15-byte slot per sample (value, timestamp tag, timestamp; the timestamp
copied from the previous series of the same target), and one
:class:`struct.Struct` for the whole compressed body. Rendering assigns
the values and timestamps of each sample position with one slice
assignment each and packs the body in one call; nothing is compressed
per request.

The uncompressed bytes are what the protobuf runtime writes for the same
message (the tests decode them with
:func:`remote_storage.protocol.write.decode_v1` and ``decode_v2``), with one
difference: a value of exactly 0.0 is written rather than omitted, which
every protobuf parser accepts.

Layouts are chosen once per run (:func:`layout`): :class:`V1Layout` writes
``prometheus.WriteRequest`` (labels as strings in every series, as
Prometheus does); :class:`V2Layout` writes ``io.prometheus.write.v2.Request``
with a symbol table per request and each series' type and help as
metadata, as Prometheus does in 2.0 mode.
"""

from __future__ import annotations

import abc
import enum
import struct
from collections.abc import Callable, Sequence
from operator import itemgetter

from remote_storage.loadgen.catalog import Metric
from remote_storage.loadgen.splice import splice
from remote_storage.protocol.wire import records
from remote_storage.varint import encode_uvarint as uvarint

__all__ = [
    "MAX_TIMESTAMP_MS",
    "MIN_TIMESTAMP_MS",
    "Layout",
    "Protocol",
    "Template",
    "V1Layout",
    "V2Layout",
    "layout",
    "timestamp_slot",
    "uvarint",
]

#: Timestamps whose varint takes exactly 6 bytes (1971-02-03 to 2109-05-15).
MIN_TIMESTAMP_MS = 1 << 35
MAX_TIMESTAMP_MS = (1 << 42) - 1

_SAMPLE_HEADER = records.FIXED_SAMPLE_HEAD  # a 16-byte Sample record up to its value
_SAMPLE_BYTES = 18
_SLOT_BYTES = 15  # the value, the timestamp's tag and the timestamp
_STAMP_BYTES = 7  # the timestamp's tag and the timestamp


class Protocol(enum.Enum):
    """Remote write 1.0 (``prometheus.WriteRequest``) or 2.0 (``io.prometheus.write.v2.Request``)."""

    V1 = "v1"
    V2 = "v2"

    @property
    def headers(self) -> dict[str, str]:
        """The request headers Prometheus sends for this version (PROTOCOL.md 2.1 and 3.1)."""
        if self is Protocol.V2:
            return {
                "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "2.0.0",
            }
        return {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        }


def timestamp_slot(timestamp_ms: int) -> bytes:
    """The 7 bytes of a sample's timestamp field: tag and 6-byte varint."""
    if not MIN_TIMESTAMP_MS <= timestamp_ms <= MAX_TIMESTAMP_MS:
        raise ValueError(
            f"timestamp {timestamp_ms} ms is outside the years 1971 to 2109 this generator supports"
        )
    return records.SAMPLE_TIMESTAMP_TAG + uvarint(timestamp_ms)


def _gatherer(positions: Sequence[int]) -> Callable[[Sequence[bytes]], tuple[bytes, ...]]:
    """A function picking ``items[p]`` for every ``p`` in ``positions``, as a tuple, in C."""
    if len(positions) == 1:
        only = positions[0]
        return lambda items: (items[only],)
    return itemgetter(*positions)


class Template:
    """One request's fixed bytes, compressed; :meth:`render` fills in values and timestamps.

    ``header`` comes first (v2: the symbols), then per series ``i`` the
    bytes ``prefixes[i]`` before its samples and ``suffixes[i]`` after them.
    ``groups[i]`` is the number (0, 1, ... in order of first appearance) of
    the series' timestamp group: the series of one scrape target share
    their timestamps.
    """

    __slots__ = ("_args", "_gather", "_struct", "raw_size", "samples_per_series", "series")

    def __init__(
        self,
        header: bytes,
        prefixes: Sequence[bytes],
        suffixes: Sequence[bytes],
        groups: Sequence[int],
        samples_per_series: int,
    ) -> None:
        if not len(prefixes) == len(suffixes) == len(groups) > 0:
            raise ValueError("a template needs at least one series, and a prefix, suffix and group for each")
        self.series = len(prefixes)
        self.samples_per_series = k = samples_per_series
        pieces = []
        between = header
        for prefix, suffix in zip(prefixes, suffixes, strict=True):
            pieces.append(between + prefix + _SAMPLE_HEADER)
            pieces.extend([_SAMPLE_HEADER] * (k - 1))
            between = suffix
        pieces.append(between)
        #: length of the uncompressed body
        self.raw_size = sum(map(len, pieces)) + _SLOT_BYTES * (len(pieces) - 1)
        # Series of one group share their timestamps: a slot copies them from the group's
        # previous series (same sample position), so only the group's first one is written.
        previous: dict[int, int] = {}
        sources = []
        for i, group in enumerate(groups):
            sources.append(previous.get(group, -1))
            previous[group] = i
        slot_sources = [s * k + j if s >= 0 else -1 for s in sources for j in range(k)]
        chunks = splice(pieces, _SLOT_BYTES, tail=_STAMP_BYTES, tail_sources=slot_sources)
        # chunk, value, timestamp (empty where copied), chunk, value, timestamp, ..., last chunk
        formats = ["<"]
        args: list[object] = []
        for chunk, source in zip(chunks, slot_sources, strict=False):
            formats.append(f"{len(chunk)}sd{0 if source >= 0 else _STAMP_BYTES}s")
            args += (chunk, 0.0, b"")
        formats.append(f"{len(chunks[-1])}s")
        args.append(chunks[-1])
        self._struct = struct.Struct("".join(formats))
        self._args = args
        # ``stamps[j]`` gets one more entry, b"", for the series whose timestamps are copied.
        self._gather = _gatherer(
            [group if source < 0 else len(previous) for group, source in zip(groups, sources, strict=True)]
        )

    def render(self, values: Sequence[Sequence[float]], stamps: Sequence[Sequence[bytes]]) -> bytes:
        """The compressed body: ``values[j][i]`` is sample ``j`` of series ``i``.

        ``stamps[j][g]`` is the :func:`timestamp_slot` of sample ``j`` of the
        series in timestamp group ``g``. Not thread-safe: one template, one thread.
        """
        args, stride = self._args, 3 * self.samples_per_series
        for j in range(self.samples_per_series):
            # Slot i * k + j holds sample j of series i.
            args[1 + 3 * j :: stride] = values[j]
            args[2 + 3 * j :: stride] = self._gather((*stamps[j], b""))
        body: bytes = self._struct.pack(*args)
        return body


class Layout(abc.ABC):
    """How one protocol version lays out a request's series."""

    @abc.abstractmethod
    def template(
        self,
        labels: Sequence[Sequence[tuple[str, str]]],
        metrics: Sequence[Metric],
        groups: Sequence[int],
        samples_per_series: int,
    ) -> Template:
        """A template for series with these sorted ``labels`` and metric families."""


class V1Layout(Layout):
    """``prometheus.WriteRequest``: every series carries its labels as strings."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], bytes] = {}

    def _pair(self, pair: tuple[str, str]) -> bytes:
        encoded = self._pairs.get(pair)
        if encoded is None:
            if len(self._pairs) >= 1 << 20:
                self._pairs.clear()
            name, value = pair
            encoded = self._pairs[pair] = records.v1_label(name.encode(), value.encode())
        return encoded

    def template(
        self,
        labels: Sequence[Sequence[tuple[str, str]]],
        metrics: Sequence[Metric],
        groups: Sequence[int],
        samples_per_series: int,
    ) -> Template:
        sample_bytes = _SAMPLE_BYTES * samples_per_series
        prefixes = []
        for pairs in labels:
            encoded = b"".join([self._pair(pair) for pair in pairs])
            prefixes.append(records.v1_series_header(len(encoded) + sample_bytes) + encoded)
        return Template(b"", prefixes, [b""] * len(prefixes), groups, samples_per_series)


class V2Layout(Layout):
    """``io.prometheus.write.v2.Request``: a symbol table, label references, metadata per series.

    Symbols are numbered in first-use order (each series' labels, then its
    help text), as Prometheus and :func:`~remote_storage.protocol.write.encode_v2` do.
    """

    def template(
        self,
        labels: Sequence[Sequence[tuple[str, str]]],
        metrics: Sequence[Metric],
        groups: Sequence[int],
        samples_per_series: int,
    ) -> Template:
        symbols: dict[str, int] = {"": 0}

        def ref(text: str) -> int:
            number = symbols.get(text)
            if number is None:
                number = symbols[text] = len(symbols)
            return number

        sample_bytes = _SAMPLE_BYTES * samples_per_series
        prefixes, suffixes = [], []
        for pairs, metric in zip(labels, metrics, strict=True):
            refs = b"".join([uvarint(ref(part)) for pair in pairs for part in pair])
            label_field = records.v2_label_refs(refs)
            suffix = records.v2_metadata(int(metric.type), ref(metric.help))
            length = len(label_field) + sample_bytes + len(suffix)
            prefixes.append(records.v2_series_header(length) + label_field)
            suffixes.append(suffix)
        header = b"".join([records.v2_symbol(text.encode()) for text in symbols])
        return Template(header, prefixes, suffixes, groups, samples_per_series)


def layout(protocol: Protocol) -> Layout:
    """The layout of ``protocol``."""
    return V2Layout() if protocol is Protocol.V2 else V1Layout()
