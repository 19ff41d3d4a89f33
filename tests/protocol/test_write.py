"""Remote write 1.0 and 2.0 decoding, validation and the encoders."""

from __future__ import annotations

import struct

import pytest

from remote_storage.errors import InvalidLabels, InvalidRequest, MalformedBody
from remote_storage.protocol.pb import remote_pb2, write_v2_pb2
from remote_storage.protocol.validation import LabelValidator, NameScheme
from remote_storage.protocol.write import decode_v1, decode_v2, encode_v1, encode_v2
from remote_storage.storage import (
    Exemplar,
    Histogram,
    Labels,
    MetricMetadata,
    MetricType,
    ResetHint,
    TimeSeries,
)

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


REFERENCE_V1 = "0a1e0a0e0a085f5f6e616d655f5f12027570120c09020000000000f07f10e807"


def bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def labels(**pairs: str) -> Labels:
    return Labels.from_mapping(pairs)


def test_v1_reference_bytes_decode() -> None:
    # PROTOCOL.md 2.3: one stale-marker sample of `up` at t=1000.
    body = bytes.fromhex(REFERENCE_V1)
    request = decode_v1(body)
    [series] = request.series
    assert series.labels == Labels([("__name__", "up")])
    assert list(series.timestamps) == [1000]
    assert bits(series.values[0]) == 0x7FF0000000000002


def test_v1_encoder_reproduces_reference_bytes() -> None:
    body = encode_v1([TimeSeries(labels(__name__="up"), [1000], [STALE_NAN])])
    assert body.hex() == REFERENCE_V1


def test_v2_reference_bytes_decode_and_encode() -> None:
    # PROTOCOL.md 3.2: symbols ["", "__name__", "up"], sample (1.0, t=1000).
    expected = "220022085f5f6e616d655f5f220275702a120a020102120c09000000000000f03f10e807"
    request = decode_v2(bytes.fromhex(expected))
    [series] = request.series
    assert series.labels == Labels([("__name__", "up")])
    assert list(series.samples()) == [(1000, 1.0)]
    assert encode_v2([TimeSeries(labels(__name__="up"), [1000], [1.0])]).hex() == expected


def test_v1_groups_entries_of_the_same_series() -> None:
    # Prometheus sends one sample per entry, interleaving series.
    message = remote_pb2.WriteRequest()
    for t in range(3):
        for job in ("a", "b"):
            entry = message.timeseries.add()
            entry.labels.add(name="__name__", value="up")
            entry.labels.add(name="job", value=job)
            entry.samples.add(value=float(t), timestamp=1000 * t)
    request = decode_v1(message.SerializeToString())
    assert [s.labels.get("job") for s in request.series] == ["a", "b"]
    for s in request.series:
        assert list(s.timestamps) == [0, 1000, 2000]
        assert list(s.values) == [0.0, 1.0, 2.0]
    assert request.sample_count == 6


def test_special_values_keep_their_bits() -> None:
    special = [STALE_NAN, float("nan"), -0.0, float("inf"), float("-inf"), 5e-324]
    special.append(struct.unpack("<d", struct.pack("<Q", 0xFFF123456789ABCD))[0])
    series = TimeSeries(labels(__name__="x"), list(range(len(special))), special)
    for encode, decode in ((encode_v1, decode_v1), (encode_v2, decode_v2)):
        [decoded] = decode(encode([series])).series
        assert [bits(v) for v in decoded.values] == [bits(v) for v in special]


HISTOGRAM = Histogram(
    timestamp=5000,
    count=10,
    sum=12.5,
    schema=3,
    zero_threshold=1e-128,
    zero_count=1,
    negative_spans=((-2, 1),),
    negative_buckets=(2,),
    positive_spans=((0, 2), (3, 1)),
    positive_buckets=(3, -1, 2),
    reset_hint=ResetHint.NO,
)
FLOAT_HISTOGRAM = Histogram(
    timestamp=6000,
    count=4.5,
    sum=-1.0,
    schema=-53,
    zero_threshold=0.0,
    zero_count=0.0,
    is_float=True,
    positive_spans=((0, 2),),
    positive_buckets=(1.5, 3.0),
    custom_values=(0.5, 1.0),
    reset_hint=ResetHint.GAUGE,
)


@pytest.mark.parametrize(("encode", "decode"), [(encode_v1, decode_v1), (encode_v2, decode_v2)])
def test_round_trip_of_every_kind_of_data(encode, decode) -> None:  # type: ignore[no-untyped-def]
    exemplar = Exemplar(labels(trace_id="abc123"), 0.25, 1500)
    floats = TimeSeries(
        labels(__name__="req_total", job="api"), [1000, 2000], [1.0, 2.0], exemplars=[exemplar]
    )
    hists = TimeSeries(labels(__name__="latency", job="api"), histograms=[HISTOGRAM, FLOAT_HISTOGRAM])
    metadata = [MetricMetadata("req_total", MetricType.COUNTER, "Requests.", "")]
    request = decode(encode([floats, hists], metadata))
    assert request.series == [floats, hists]
    assert request.metadata == metadata
    assert (request.sample_count, request.histogram_count, request.exemplar_count) == (2, 2, 1)


def test_integer_histogram_with_zero_count_is_still_integer() -> None:
    zero = Histogram(timestamp=1, count=0, sum=0.0, schema=0, zero_threshold=0.0, zero_count=0)
    [series] = decode_v1(encode_v1([TimeSeries(labels(__name__="h"), histograms=[zero])])).series
    assert series.histograms == [zero]
    assert not series.histograms[0].is_float


def test_metadata_only_request_is_valid() -> None:
    request = decode_v1(encode_v1([], [MetricMetadata("up", MetricType.GAUGE, "Up.", "")]))
    assert request.series == []
    assert request.metadata == [MetricMetadata("up", MetricType.GAUGE, "Up.", "")]


def v1_body(*label_pairs: tuple[str, str]) -> bytes:
    message = remote_pb2.WriteRequest()
    entry = message.timeseries.add()
    for name, value in label_pairs:
        entry.labels.add(name=name, value=value)
    entry.samples.add(value=1.0, timestamp=1)
    return message.SerializeToString()


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ((), "empty"),
        ((("job", "a"), ("__name__", "up"), ("job", "b")), "'job' appears more than once"),
        ((("__name__", "up"), ("job", "a"), ("job", "b")), "more than once"),
        ((("", "x"), ("__name__", "up")), "name is empty"),
        ((("job", "a"),), "no metric name"),
        ((("__name__", ""), ("job", "a")), "no metric name"),
    ],
)
def test_invalid_label_sets(pairs: tuple[tuple[str, str], ...], reason: str) -> None:
    with pytest.raises(InvalidLabels, match=reason) as info:
        decode_v1(v1_body(*pairs))
    assert info.value.http_status == 400


def test_unsorted_label_names_are_sorted() -> None:
    # as some client libraries send them: in the order the user wrote them
    [series] = decode_v1(v1_body(("job", "a"), ("__name__", "up"), ("instance", "h"))).series
    assert series.labels == labels(__name__="up", instance="h", job="a")
    v2 = v2_request(["", "job", "a", "__name__", "up"], [1, 2, 3, 4])
    [series] = decode_v2(v2).series
    assert series.labels == labels(__name__="up", job="a")


def test_legacy_name_scheme() -> None:
    legacy = LabelValidator(NameScheme.LEGACY)
    with pytest.raises(InvalidLabels, match="invalid label name '1abc'"):
        decode_v1(v1_body(("1abc", "x"), ("__name__", "up")), legacy)
    with pytest.raises(InvalidLabels, match="invalid metric name 'up-time'"):
        decode_v1(v1_body(("__name__", "up-time")), legacy)
    # Accepted in the UTF-8 scheme, as Prometheus 3 does.
    assert decode_v1(v1_body(("__name__", "up-time"), ("ünïcode", "x"))).series


def test_empty_label_values_are_dropped() -> None:
    [series] = decode_v1(v1_body(("__name__", "up"), ("env", ""), ("job", "a"))).series
    assert series.labels == labels(__name__="up", job="a")


def test_garbage_is_malformed() -> None:
    with pytest.raises(MalformedBody, match="prometheus.WriteRequest"):
        decode_v1(b"\xff\xff\xff garbage")
    with pytest.raises(MalformedBody, match="io.prometheus.write.v2.Request"):
        decode_v2(b"\x22\x05ab")


def v2_request(symbols: list[str], refs: list[int], with_sample: bool = True) -> bytes:
    message = write_v2_pb2.Request()
    message.symbols.extend(symbols)
    entry = message.timeseries.add()
    entry.labels_refs.extend(refs)
    if with_sample:
        entry.samples.add(value=1.0, timestamp=1)
    return message.SerializeToString()


def test_v2_symbol_errors() -> None:
    symbols = ["", "__name__", "up"]
    with pytest.raises(InvalidRequest, match="odd number"):
        decode_v2(v2_request(symbols, [1, 2, 1]))
    with pytest.raises(InvalidRequest, match="outside the symbol table"):
        decode_v2(v2_request(symbols, [1, 7]))
    with pytest.raises(InvalidRequest, match="symbols.0. must be the empty string"):
        decode_v2(v2_request(["x", "__name__", "up"], [1, 2]))
    with pytest.raises(InvalidRequest, match="neither samples nor histograms"):
        decode_v2(v2_request(symbols, [1, 2], with_sample=False))


def test_v2_metadata_refs_are_checked() -> None:
    message = write_v2_pb2.Request()
    message.symbols.extend(["", "__name__", "up"])
    entry = message.timeseries.add()
    entry.labels_refs.extend([1, 2])
    entry.samples.add(value=1.0, timestamp=1)
    entry.metadata.type = write_v2_pb2.Metadata.METRIC_TYPE_GAUGE
    entry.metadata.help_ref = 9
    with pytest.raises(InvalidRequest, match="help: reference 9"):
        decode_v2(message.SerializeToString())


def test_v1_body_parsed_as_v2_is_not_silently_accepted() -> None:
    # Field numbers 1-3 are reserved in v2, so a v1 body decodes to nothing;
    # the server chooses by Content-Type, never by sniffing.
    assert decode_v2(v1_body(("__name__", "up"))).series == []
