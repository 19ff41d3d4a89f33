"""Content negotiation: which message a write body holds, which read response to send.

Pure functions of header values, so they are tested without a server.
Prometheus' own parser does not trim whitespace around parameters; here
``application/x-protobuf; proto=...`` (with a space) is accepted as meant.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from remote_storage.errors import (
    UnsupportedEncoding,
    UnsupportedMediaType,
    UnsupportedResponseType,
)

__all__ = [
    "ResponseType",
    "WriteVersion",
    "check_content_encoding",
    "choose_response_type",
    "write_version",
]

PROTOBUF = "application/x-protobuf"


class WriteVersion(enum.Enum):
    """The remote-write message a body holds, named by its protobuf message."""

    V1 = "prometheus.WriteRequest"
    V2 = "io.prometheus.write.v2.Request"

    @property
    def label(self) -> str:
        return "1.0" if self is WriteVersion.V1 else "2.0"


_BY_PROTO = {version.value: version for version in WriteVersion}


class ResponseType(enum.IntEnum):
    """Remote-read response types; values are the protobuf enum numbers."""

    SAMPLES = 0
    STREAMED_XOR_CHUNKS = 1


def write_version(content_type: str | None) -> WriteVersion:
    """Map a write request's Content-Type to its message, or raise 415.

    A missing Content-Type and a bare ``application/x-protobuf`` mean 1.0.
    """
    if content_type is None or not content_type.strip():
        return WriteVersion.V1
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != PROTOBUF:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {content_type!r}: expected {PROTOBUF} "
            f"with proto={WriteVersion.V1.value} or proto={WriteVersion.V2.value}"
        )
    proto = None
    for param in params:
        if not param:
            continue
        name, sep, value = param.partition("=")
        if not sep:
            raise UnsupportedMediaType(f"malformed Content-Type parameter {param!r} in {content_type!r}")
        if name.strip().lower() == "proto":
            proto = value.strip().strip('"')
    if proto is None:
        return WriteVersion.V1
    try:
        return _BY_PROTO[proto]
    except KeyError:
        raise UnsupportedMediaType(
            f"unsupported remote-write message proto={proto!r}: this server accepts "
            f"{WriteVersion.V1.value} and {WriteVersion.V2.value}"
        ) from None


def check_content_encoding(content_encoding: str | None) -> None:
    """Raise 415 unless the body is snappy-encoded (a missing header means snappy)."""
    if content_encoding is None or content_encoding.strip().lower() in ("", "snappy"):
        return
    raise UnsupportedEncoding(f"unsupported Content-Encoding {content_encoding!r}: only snappy is accepted")


def choose_response_type(accepted: Iterable[int], implemented: Iterable[ResponseType]) -> ResponseType:
    """The first accepted type this server implements; an empty list means SAMPLES."""
    accepted = list(accepted)
    if not accepted:
        return ResponseType.SAMPLES
    implemented = set(implemented)
    for value in accepted:
        if value in implemented:
            return ResponseType(value)
    raise UnsupportedResponseType(
        f"none of the accepted response types {accepted} is implemented; "
        f"this server answers {sorted(t.name for t in implemented)}"
    )
