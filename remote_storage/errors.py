"""Errors named after what happened, each carrying its data and an HTTP status.

The server answers any :class:`RemoteStorageError` with its ``http_status``
and its message as a plain-text body; anything else is a server fault (500).
Backends raise :class:`SampleConflict` for a rejected sample and
:class:`StorageUnavailable` when a retry could succeed.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BodyTooLarge",
    "InvalidLabels",
    "InvalidQuery",
    "InvalidRequest",
    "MalformedBody",
    "RemoteStorageError",
    "SampleConflict",
    "StorageUnavailable",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
    "UnsupportedResponseType",
]


class RemoteStorageError(Exception):
    """Base class; ``http_status`` is the status the server answers with."""

    http_status: ClassVar[int] = 500


class InvalidRequest(RemoteStorageError):
    """The request cannot be accepted as sent (400); a retry would fail again."""

    http_status = 400


class MalformedBody(InvalidRequest):
    """The body is not valid snappy or not a valid protobuf message."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


class InvalidLabels(InvalidRequest):
    """A series' label set breaks Prometheus' label rules."""

    def __init__(self, labels: str, reason: str) -> None:
        super().__init__(f"invalid label set {labels}: {reason}")
        self.labels = labels
        self.reason = reason


class SampleConflict(InvalidRequest):
    """A sample has the timestamp of a stored sample of its series but other value bits."""

    def __init__(self, labels: str, timestamp: int, stored: float, sent: float) -> None:
        super().__init__(
            f"duplicate sample for timestamp {timestamp} of series {labels}: "
            f"stored value {stored!r}, sent value {sent!r}"
        )
        self.labels = labels
        self.timestamp = timestamp
        self.stored = stored
        self.sent = sent


class InvalidQuery(InvalidRequest):
    """A read query is unusable (bad matcher regex, start after end, ...)."""


class UnsupportedResponseType(InvalidRequest):
    """None of the response types the reader accepts is implemented."""


class BodyTooLarge(RemoteStorageError):
    """The body, or its decompressed size, is above the configured limit (413)."""

    http_status = 413

    def __init__(self, what: str, size: int, limit: int, setting: str) -> None:
        super().__init__(
            f"{what} of {size} bytes exceeds the limit of {limit} bytes (raise it with {setting})"
        )
        self.size = size
        self.limit = limit


class UnsupportedMediaType(RemoteStorageError):
    """The Content-Type names no message this server decodes (415)."""

    http_status = 415


class UnsupportedEncoding(UnsupportedMediaType):
    """The Content-Encoding is not snappy (415)."""


class StorageUnavailable(RemoteStorageError):
    """The backend cannot serve now but may later (503); senders retry."""

    http_status = 503
