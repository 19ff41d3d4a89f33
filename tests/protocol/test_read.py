"""Remote read request decoding and SAMPLES response encoding."""

from __future__ import annotations

import struct

import pytest

from remote_storage.errors import InvalidQuery, MalformedBody
from remote_storage.matchers import Matcher, MatchType
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.pb import remote_pb2
from remote_storage.protocol.read import (
    decode_read_request,
    decode_read_response,
    encode_read_request,
    encode_read_response,
)
from remote_storage.storage import Histogram, Labels, Query, QueryResult, ReadHints, ReadRequest, TimeSeries


def test_request_round_trip_keeps_queries_and_accepted_types() -> None:
    request = ReadRequest(
        (
            Query(0, 1000, (Matcher(MatchType.EQ, "__name__", "up"),), ReadHints(step_ms=15000, func="rate")),
            Query(-5, 5, (Matcher(MatchType.NRE, "job", "a|b"), Matcher(MatchType.NEQ, "env", ""))),
        )
    )
    accepted = [ResponseType.STREAMED_XOR_CHUNKS, ResponseType.SAMPLES]
    decoded, decoded_accepted = decode_read_request(encode_read_request(request, accepted))
    assert decoded == request
    assert decoded_accepted == [1, 0]


def test_prometheus_242_request_without_response_types() -> None:
    message = remote_pb2.ReadRequest()
    q = message.queries.add(start_timestamp_ms=1, end_timestamp_ms=2)
    q.matchers.add(type=0, name="__name__", value="up")
    request, accepted = decode_read_request(message.SerializeToString())
    assert accepted == []
    assert request.queries[0].hints is None
    assert request.queries[0].matchers == (Matcher(MatchType.EQ, "__name__", "up"),)


def test_bad_queries_are_400() -> None:
    bad_regex = encode_read_request(ReadRequest((Query(0, 1, ()),)))
    message = remote_pb2.ReadRequest.FromString(bad_regex)
    message.queries[0].matchers.add(type=2, name="job", value="(unclosed")
    with pytest.raises(InvalidQuery, match="query 0: .*RE2"):
        decode_read_request(message.SerializeToString())
    reversed_range = encode_read_request(ReadRequest((Query(0, 1, ()), Query(10, 5, ()))))
    with pytest.raises(InvalidQuery, match="query 1: start 10 is after end 5"):
        decode_read_request(reversed_range)
    with pytest.raises(MalformedBody):
        decode_read_request(b"\x0a\xff")


def test_response_round_trip_is_bit_exact() -> None:
    stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    hist = Histogram(timestamp=3, count=1, sum=1.0, schema=0, zero_threshold=0.0, zero_count=0)
    results = [
        QueryResult([TimeSeries(Labels([("__name__", "a")]), [1, 2], [1.5, stale], [hist])]),
        QueryResult([]),
        QueryResult([TimeSeries(Labels([("__name__", "b"), ("x", "y")]), [7], [-0.0])]),
    ]
    assert decode_read_response(encode_read_response(results)) == results
