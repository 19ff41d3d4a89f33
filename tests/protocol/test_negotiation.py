from __future__ import annotations

import pytest

from remote_storage.errors import UnsupportedEncoding, UnsupportedMediaType, UnsupportedResponseType
from remote_storage.protocol.negotiation import (
    ResponseType,
    WriteVersion,
    check_content_encoding,
    choose_response_type,
    write_version,
)

V1, V2 = WriteVersion.V1, WriteVersion.V2


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, V1),
        ("", V1),
        ("application/x-protobuf", V1),
        ("application/x-protobuf;proto=prometheus.WriteRequest", V1),
        ("application/x-protobuf;proto=io.prometheus.write.v2.Request", V2),
        ("application/x-protobuf; proto=io.prometheus.write.v2.Request", V2),
        ("Application/X-Protobuf; Proto=io.prometheus.write.v2.Request", V2),
        ('application/x-protobuf;proto="io.prometheus.write.v2.Request"', V2),
    ],
)
def test_write_version(content_type: str | None, expected: WriteVersion) -> None:
    assert write_version(content_type) is expected


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        "application/x-protobuf;proto",
    ],
)
def test_unknown_content_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        write_version(content_type)
    assert info.value.http_status == 415


def test_content_encoding() -> None:
    check_content_encoding(None)
    check_content_encoding("snappy")
    check_content_encoding("Snappy")
    for bad in ("gzip", "zstd", "identity"):
        with pytest.raises(UnsupportedEncoding) as info:
            check_content_encoding(bad)
        assert info.value.http_status == 415


def test_response_type_choice() -> None:
    samples_only = [ResponseType.SAMPLES]
    assert choose_response_type([], samples_only) is ResponseType.SAMPLES
    assert choose_response_type([1, 0], samples_only) is ResponseType.SAMPLES
    assert choose_response_type([1, 0], list(ResponseType)) is ResponseType.STREAMED_XOR_CHUNKS
    with pytest.raises(UnsupportedResponseType) as info:
        choose_response_type([1], samples_only)
    assert info.value.http_status == 400
