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
    "Overloaded",
    "ReadTimeout",
    "RemoteStorageError",
    "RequestBodyTimeout",
    "RequestSampleLimitExceeded",
    "SampleConflict",
    "SampleLimitExceeded",
    "StorageUnavailable",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
    "UnsupportedResponseType",
]


class RemoteStorageError(Exception):
    """Base class; ``http_status`` is the status the server answers with."""

    http_status: ClassVar[int] = 500
    #: short machine-readable cause, used as a metric label
    kind: ClassVar[str] = "internal"


class InvalidRequest(RemoteStorageError):
    """The request cannot be accepted as sent (400); a retry would fail again."""

    http_status = 400
    kind = "invalid"


class MalformedBody(InvalidRequest):
    """The body is not valid snappy or not a valid protobuf message."""

    kind = "malformed"

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


class InvalidLabels(InvalidRequest):
    """A series' label set breaks Prometheus' label rules."""

    kind = "invalid_labels"

    def __init__(self, labels: str, reason: str) -> None:
        super().__init__(f"invalid label set {labels}: {reason}")
        self.labels = labels
        self.reason = reason


class SampleConflict(InvalidRequest):
    """A sample has the timestamp of a stored sample of its series but other value bits."""

    kind = "sample_conflict"

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


class SampleLimitExceeded(InvalidRequest):
    """A read query selected more samples than ``--read-sample-limit`` allows."""

    kind = "sample_limit"

    def __init__(self, query_index: int, limit: int) -> None:
        super().__init__(
            f"query {query_index} exceeded the sample limit of {limit} "
            "(narrow the query, or raise --read-sample-limit)"
        )
        self.query_index = query_index
        self.limit = limit


class RequestSampleLimitExceeded(InvalidRequest):
    """The queries of one SAMPLES read request together selected more than ``--read-request-sample-limit``."""

    kind = "sample_limit"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the queries of this request together exceeded the sample limit of {limit} "
            "(send fewer or narrower queries, use streamed remote read, or raise --read-request-sample-limit)"
        )
        self.limit = limit


class UnsupportedResponseType(InvalidRequest):
    """None of the response types the reader accepts is implemented."""


class BodyTooLarge(RemoteStorageError):
    """The body, or its decompressed size, is above the configured limit (413)."""

    http_status = 413
    kind = "too_large"

    def __init__(self, what: str, size: int | None, limit: int, setting: str) -> None:
        of_size = "" if size is None else f" of {size} bytes"
        super().__init__(f"{what}{of_size} exceeds the limit of {limit} bytes (raise it with {setting})")
        self.size = size
        self.limit = limit


class RequestBodyTimeout(RemoteStorageError):
    """The body did not arrive within ``--body-timeout`` after the headers (408); the connection is closed."""

    http_status = 408
    kind = "body_timeout"

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the request body did not arrive within {timeout:g}s (raise --body-timeout)")
        self.timeout = timeout


class Overloaded(RemoteStorageError):
    """Too much work of one kind is in flight (429); the sender should retry after ``retry_after`` seconds.

    Nothing of the request was stored or computed.
    """

    http_status = 429
    kind = "overloaded"

    def __init__(self, what: str, limit: int, setting: str, retry_after: int = 1) -> None:
        super().__init__(
            f"too many {what} in flight (limit {limit}); retry after {retry_after}s, "
            f"or raise {setting} if the server has room"
        )
        self.what = what
        self.limit = limit
        self.setting = setting
        self.retry_after = retry_after


class UnsupportedMediaType(RemoteStorageError):
    """The Content-Type names no message this server decodes (415)."""

    http_status = 415
    kind = "unsupported_media_type"


class UnsupportedEncoding(UnsupportedMediaType):
    """The Content-Encoding is not snappy (415)."""


class StorageUnavailable(RemoteStorageError):
    """The backend cannot serve now but may later (503); senders retry."""

    http_status = 503
    kind = "unavailable"


class ReadTimeout(StorageUnavailable):
    """A remote-read request did not finish within ``--read-timeout``."""

    kind = "timeout"

    def __init__(self, timeout: float) -> None:
        super().__init__(f"remote read did not finish within {timeout:g}s (raise --read-timeout)")
        self.timeout = timeout
