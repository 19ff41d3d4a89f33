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
    "CannotOpenStorage",
    "InvalidLabels",
    "InvalidQuery",
    "InvalidRequest",
    "LabelSetTooLarge",
    "LimitExceeded",
    "MalformedBody",
    "Overloaded",
    "ReadTimeout",
    "RemoteStorageError",
    "RequestBodyTimeout",
    "RequestSampleLimitExceeded",
    "SampleConflict",
    "SampleLimitExceeded",
    "StorageUnavailable",
    "TenantForbidden",
    "TenantNameTooLong",
    "Unauthorized",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
    "UnsupportedResponseType",
]


class RemoteStorageError(Exception):
    """Base class; ``http_status`` is the status the server answers with."""

    http_status: ClassVar[int] = 500
    #: short machine-readable cause, used as a metric label (a class's, or one error's own)
    kind: str = "internal"


class InvalidRequest(RemoteStorageError):
    """The request cannot be accepted as sent (400); a retry would fail again.

    A backend raises it for data it cannot store (for instance native
    histograms, when it keeps floats only) rather than dropping that data and
    answering 2xx: ``raise InvalidRequest("this backend stores float samples
    only: drop native histograms with write_relabel_configs")``.
    """

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
    """A sample has the timestamp of a stored sample of its series but other value bits.

    Backends raise it from ``write`` (the whole request then stores nothing)
    with ``labels``, the series' label set as text (``str(labels)``), the
    sample's ``timestamp`` in milliseconds, the ``stored`` value and the
    ``sent`` one::

        raise SampleConflict(str(series.labels), timestamp, stored_value, sent_value)

    The server answers 400: a sender retrying the same request would fail again.
    """

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


class LimitExceeded(InvalidRequest):
    """A write is over a configured limit (400): sent again as it is, it would fail again.

    ``kind`` is the limit's reason (``label_value_too_long``, ``too_many_series``,
    ...), the label of the rejection counter; ``flag`` is the setting that
    raises ``limit``.
    """

    def __init__(self, reason: str, message: str, limit: int, flag: str) -> None:
        super().__init__(message)
        self.kind = reason
        self.limit = limit
        self.flag = flag


class LabelSetTooLarge(InvalidRequest):
    """A label set (or metric family name) is larger than the backend can index (400).

    PostgreSQL's B-tree index entries hold at most 2704 bytes, so a label set
    that cannot fit can never be stored there: refused, not retried.
    """

    kind = "label_set_too_large"

    def __init__(self, what: str, size: int, limit: int, index: str, database: str) -> None:
        super().__init__(
            f"{what} needs an entry of {size} bytes in index {index}, above {database}'s limit of "
            f"{limit} bytes per index entry; drop or shorten labels before they are sent "
            "(write_relabel_configs in Prometheus), or store them with the SQLite backend"
        )
        self.database = database
        self.what = what
        self.size = size
        self.limit = limit
        self.index = index


class TenantNameTooLong(InvalidRequest):
    """A tenant name is longer than the backend can index (400): refused, not retried."""

    kind = "tenant_name_too_long"

    def __init__(self, size: int, entry: int, limit: int, index: str, database: str) -> None:
        super().__init__(
            f"a tenant name of {size} bytes needs an entry of {entry} bytes in index {index}, above "
            f"{database}'s limit of {limit} bytes per index entry; choose a shorter tenant name"
        )
        self.size = size
        self.entry = entry
        self.limit = limit
        self.index = index
        self.database = database


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


class Unauthorized(RemoteStorageError):
    """The request carries no credentials, or none that are valid (401).

    The message never says which part was wrong (user, password, token or
    scheme); ``reason`` tells the server's own metrics whether credentials were
    ``missing`` or ``invalid``.
    """

    http_status = 401
    kind = "unauthorized"

    def __init__(self, reason: str) -> None:
        super().__init__("authentication required: send valid credentials (basic auth or a bearer token)")
        self.reason = reason


class TenantForbidden(RemoteStorageError):
    """Credentials bound to one tenant were sent with a tenant header naming another (403)."""

    http_status = 403
    kind = "tenant_forbidden"

    def __init__(self, bound: str, sent: str, header: str) -> None:
        super().__init__(
            f"these credentials are bound to tenant {bound!r} but the {header} header names {sent!r}; "
            "drop the header or name the bound tenant"
        )
        self.bound = bound
        self.sent = sent


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


class CannotOpenStorage(Exception):
    """The backend cannot be opened at start-up; the message names the cause and what to change.

    Not an HTTP error: ``remote-storage serve`` prints the message as one line
    and exits non-zero.
    """
