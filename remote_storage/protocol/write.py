"""Remote write 1.0 and 2.0 bodies to and from one version-independent :class:`WriteRequest`.

Decoding validates every series (see :mod:`.validation`) and groups the
request's entries by label set: Prometheus sends one sample per entry, so the
same label set appears many times in one request. Any invalid series rejects
the whole request (nothing of it is stored), which keeps writes atomic for
both versions. The encoders build request bodies (uncompressed protobuf) for
the load generator, the pusher and the tests.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Sequence
from functools import partial
from typing import Any

from remote_storage.errors import InvalidRequest
from remote_storage.protocol import histograms
from remote_storage.protocol.messages import parse
from remote_storage.protocol.pb import remote_pb2, types_pb2, write_v2_pb2
from remote_storage.protocol.validation import LabelValidator
from remote_storage.protocol.wire.v1_scan import Columns, columns, scan
from remote_storage.storage import (
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    MetricType,
    SampleBatch,
    TimeSeries,
    WriteRequest,
)

__all__ = ["decode_v1", "decode_v2", "encode_v1", "encode_v2"]

_DEFAULT_VALIDATOR = LabelValidator()


class _SeriesBuilder:
    """Collects the data of all entries of one label set in a request."""

    __slots__ = ("exemplars", "histograms", "labels", "timestamps", "values")

    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self.timestamps: array[int] = array("q")
        self.values: array[float] = array("d")
        self.histograms: list[Histogram] = []
        self.exemplars: list[Exemplar] = []

    def add_data(self, entry: Any) -> None:
        """Append the samples and histograms of a v1 or v2 ``TimeSeries`` message."""
        for sample in entry.samples:
            self.timestamps.append(sample.timestamp)
            self.values.append(sample.value)
        if entry.histograms:
            self.histograms.extend(histograms.from_proto(h) for h in entry.histograms)

    def build(self, key: object) -> TimeSeries:
        return TimeSeries(self.labels, self.timestamps, self.values, self.histograms, self.exemplars, key=key)


def decode_v1(payload: bytes, validate: LabelValidator = _DEFAULT_VALIDATOR) -> WriteRequest:
    """Decode an uncompressed ``prometheus.WriteRequest``.

    Bodies of the shape Prometheus sends go through :mod:`.wire.v1_scan`: series
    are keyed by their encoded label bytes, and label sets the validator
    already knows are decoded only if the backend asks for them. Other bodies
    are decoded by the protobuf runtime; the result is the same.
    """
    found = columns(payload)
    if found is not None:
        return _from_columns(found, validate)
    scanned = scan(payload)
    if scanned is None:
        return _decode_v1_messages(payload, validate)
    series = []
    for key, (timestamps, values) in scanned.series.items():
        if validate.knows(key):
            series.append(TimeSeries.lazy(key, partial(labels_from_key, key, validate), timestamps, values))
        else:
            labels = labels_from_key(key, validate)
            validate.remember(key)
            series.append(TimeSeries(labels, timestamps, values, key=key))
    return WriteRequest(series, _metadata(scanned.metadata))


def _from_columns(found: Columns, validate: LabelValidator) -> WriteRequest:
    """The request of a body whose every entry holds one sample: a :class:`SampleBatch`.

    Only keys the validator has not seen are decoded here (and checked); the
    batch decodes the others if the backend asks for their labels.
    """
    decoded: dict[Hashable, Labels] = {}
    unknown = validate.unknown(found.keys)
    if unknown:
        for key in found.keys:  # in request order: the first invalid entry is the one reported
            if key in unknown and key not in decoded:
                decoded[key] = labels_from_key(key, validate)
                validate.remember(key)

    def labels(key: Hashable) -> Labels:
        found_labels = decoded.get(key)
        if found_labels is None:
            assert isinstance(key, bytes)
            found_labels = decoded[key] = labels_from_key(key, validate)
        return found_labels

    batch = SampleBatch(found.keys, found.timestamps, found.values, labels)
    return WriteRequest(metadata=_metadata(found.metadata), batch=batch)


def _metadata(records: list[bytes]) -> list[MetricMetadata]:
    metadata = []
    for raw in records:
        m = types_pb2.MetricMetadata()
        parse(m, raw)
        if m.metric_family_name:
            metadata.append(MetricMetadata(m.metric_family_name, MetricType(m.type), m.help, m.unit))
    return metadata


def labels_from_key(key: bytes, validate: LabelValidator) -> Labels:
    message = types_pb2.Labels()
    parse(message, key)
    return validate(tuple((label.name, label.value) for label in message.labels))


def _decode_v1_messages(payload: bytes, validate: LabelValidator = _DEFAULT_VALIDATOR) -> WriteRequest:
    """Decode a ``prometheus.WriteRequest`` with the protobuf runtime (any valid encoding)."""
    message = remote_pb2.WriteRequest()
    parse(message, payload)
    builders: dict[tuple[tuple[str, str], ...], _SeriesBuilder] = {}
    for entry in message.timeseries:
        pairs = tuple((label.name, label.value) for label in entry.labels)
        builder = builders.get(pairs)
        if builder is None:
            builder = builders[pairs] = _SeriesBuilder(validate(pairs))
        builder.add_data(entry)
        for exemplar in entry.exemplars:
            builder.exemplars.append(
                Exemplar(
                    Labels.from_mapping({label.name: label.value for label in exemplar.labels}),
                    exemplar.value,
                    exemplar.timestamp,
                )
            )
    metadata = [
        MetricMetadata(m.metric_family_name, MetricType(m.type), m.help, m.unit)
        for m in message.metadata
        if m.metric_family_name
    ]
    return WriteRequest([b.build(pairs) for pairs, b in builders.items()], metadata)


def _resolve(symbols: Sequence[str], refs: Sequence[int], what: str) -> tuple[tuple[str, str], ...]:
    if len(refs) % 2:
        raise InvalidRequest(f"{what}: odd number of label references ({len(refs)})")
    try:
        names = [symbols[ref] for ref in refs]
    except IndexError:
        bad = max(refs)
        raise InvalidRequest(
            f"{what}: label reference {bad} is outside the symbol table of {len(symbols)} symbols"
        ) from None
    return tuple(zip(names[::2], names[1::2], strict=True))


def _symbol(symbols: Sequence[str], ref: int, what: str) -> str:
    if ref >= len(symbols):
        raise InvalidRequest(f"{what}: reference {ref} is outside the symbol table of {len(symbols)} symbols")
    return symbols[ref]


def decode_v2(payload: bytes, validate: LabelValidator = _DEFAULT_VALIDATOR) -> WriteRequest:
    """Decode an uncompressed ``io.prometheus.write.v2.Request``, resolving its symbols."""
    message = write_v2_pb2.Request()
    parse(message, payload)
    symbols = list(message.symbols)
    if symbols and symbols[0] != "":
        raise InvalidRequest(f"symbols[0] must be the empty string, got {symbols[0]!r}")
    builders: dict[tuple[tuple[str, str], ...], _SeriesBuilder] = {}
    metadata: dict[str, MetricMetadata] = {}
    for index, entry in enumerate(message.timeseries):
        what = f"timeseries[{index}]"
        pairs = _resolve(symbols, entry.labels_refs, what)
        builder = builders.get(pairs)
        if builder is None:
            builder = builders[pairs] = _SeriesBuilder(validate(pairs))
        if entry.samples and entry.histograms:
            raise InvalidRequest(f"{what} of {builder.labels}: has both samples and histograms")
        if not entry.samples and not entry.histograms:
            raise InvalidRequest(f"{what} of {builder.labels}: has neither samples nor histograms")
        builder.add_data(entry)
        for exemplar in entry.exemplars:
            exemplar_pairs = _resolve(symbols, exemplar.labels_refs, f"{what} exemplar")
            builder.exemplars.append(
                Exemplar(Labels.from_mapping(dict(exemplar_pairs)), exemplar.value, exemplar.timestamp)
            )
        meta = entry.metadata
        if meta.type or meta.help_ref or meta.unit_ref:
            family = builder.labels.metric_name
            metadata[family] = MetricMetadata(
                family,
                MetricType(meta.type),
                _symbol(symbols, meta.help_ref, f"{what} help"),
                _symbol(symbols, meta.unit_ref, f"{what} unit"),
            )
    return WriteRequest([b.build(pairs) for pairs, b in builders.items()], list(metadata.values()))


def encode_v1(series: Iterable[TimeSeries], metadata: Iterable[MetricMetadata] = ()) -> bytes:
    """Serialize a ``prometheus.WriteRequest`` (one entry per series, not compressed)."""
    message = remote_pb2.WriteRequest()
    for s in series:
        entry = message.timeseries.add()
        for name, label_value in s.labels:
            entry.labels.add(name=name, value=label_value)
        for timestamp, value in zip(s.timestamps, s.values, strict=True):
            entry.samples.add(value=value, timestamp=timestamp)
        for h in s.histograms:
            histograms.to_proto(h, entry.histograms.add())
        for e in s.exemplars:
            ex = entry.exemplars.add(value=e.value, timestamp=e.timestamp)
            for name, label_value in e.labels:
                ex.labels.add(name=name, value=label_value)
    for m in metadata:
        message.metadata.add(type=int(m.type), metric_family_name=m.family, help=m.help, unit=m.unit)
    data: bytes = message.SerializeToString()
    return data


class _Symbols:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def ref(self, text: str) -> int:
        ref = self.index.get(text)
        if ref is None:
            ref = self.index[text] = len(self.table)
            self.table.append(text)
        return ref

    def refs(self, labels: Labels) -> list[int]:
        return [self.ref(part) for pair in labels for part in pair]


def encode_v2(series: Iterable[TimeSeries], metadata: Iterable[MetricMetadata] = ()) -> bytes:
    """Serialize an ``io.prometheus.write.v2.Request`` (not compressed).

    Metadata is attached to each series whose metric name it describes.
    """
    by_family = {m.family: m for m in metadata}
    symbols = _Symbols()
    message = write_v2_pb2.Request()
    for s in series:
        entry = message.timeseries.add()
        entry.labels_refs.extend(symbols.refs(s.labels))
        for timestamp, value in zip(s.timestamps, s.values, strict=True):
            entry.samples.add(value=value, timestamp=timestamp)
        for h in s.histograms:
            histograms.to_proto(h, entry.histograms.add())
        for e in s.exemplars:
            ex = entry.exemplars.add(value=e.value, timestamp=e.timestamp)
            ex.labels_refs.extend(symbols.refs(e.labels))
        meta = by_family.get(s.labels.metric_name)
        if meta is not None:
            entry.metadata.type = int(meta.type)
            entry.metadata.help_ref = symbols.ref(meta.help)
            entry.metadata.unit_ref = symbols.ref(meta.unit)
    message.symbols.extend(symbols.table)
    data: bytes = message.SerializeToString()
    return data
