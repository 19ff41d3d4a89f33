"""What one write may hold: label sizes, series and samples per request, timestamps.

Every limit is a setting of ``remote-storage serve`` (the flag is named in
each refusal) and 0 turns it off. A request over a limit is refused whole
with 400 and a :class:`~remote_storage.errors.LimitExceeded` naming the
limit and its flag: it can never succeed as sent, so a sender must not retry
it. The defaults follow what multi-tenant Prometheus stores accept (Mimir's
label sizes, its ten-minute grace for samples ahead of the clock), with more
room for labels per series, which label-rich exporters such as
kube-state-metrics exceed at Mimir's 30.

Label sizes are checked when a label set is validated, which happens once
per new label set (see :mod:`.validation`); the per-request limits are
checked by :func:`check_request` after decoding, before the backend sees
anything. Lengths are in bytes of UTF-8, as Prometheus and Mimir count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import cast

from remote_storage.errors import LimitExceeded
from remote_storage.storage import TimeSeries, WriteRequest

__all__ = ["WriteLimits", "check_request", "describe_labels", "utf8_length"]

#: A label value longer than this is cut in error messages, so that a refusal stays one short line.
SHOWN_VALUE_CHARS = 64
#: A label set longer than this (in characters) is cut in error messages.
SHOWN_LABELS_CHARS = 400


@dataclass(frozen=True)
class WriteLimits:
    """Limits of one write request; 0 turns a limit off. Times in milliseconds."""

    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_labels_per_series: int = 64
    max_series_per_request: int = 100_000
    max_samples_per_request: int = 1_000_000
    #: samples older than this before the server's clock are refused (0: any age)
    max_sample_age_ms: int = 0
    #: samples more than this ahead of the server's clock are refused (0: any time ahead)
    future_grace_ms: int = 10 * 60 * 1000

    def __post_init__(self) -> None:
        for limit in fields(self):
            if getattr(self, limit.name) < 0:
                raise ValueError(f"{limit.name} must be 0 (no limit) or positive")


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding it when the character count settles it."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def describe_labels(pairs: Iterable[tuple[str, str]]) -> str:
    """A label set as Prometheus prints it, values and the whole cut short for messages."""
    parts = []
    for name, value in pairs:
        shown = value if len(value) <= SHOWN_VALUE_CHARS else value[:SHOWN_VALUE_CHARS] + "..."
        shown = shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{name[:SHOWN_VALUE_CHARS]}="{shown}"')
    text = "{" + ", ".join(parts) + "}"
    if len(text) > SHOWN_LABELS_CHARS:
        text = text[:SHOWN_LABELS_CHARS] + "...}"
    return text


def check_request(request: WriteRequest, limits: WriteLimits, now_ms: int) -> None:
    """Raise :class:`LimitExceeded` if the decoded ``request`` is over a per-request limit."""
    batch = request.batch
    if batch is not None:
        rows = len(batch)
        if limits.max_samples_per_request and rows > limits.max_samples_per_request:
            _too_many_samples(rows, limits)
        if limits.max_series_per_request and rows > limits.max_series_per_request:
            distinct = len(set(batch.keys))
            if distinct > limits.max_series_per_request:
                _too_many_series(distinct, limits)
        if rows and (limits.max_sample_age_ms or limits.future_grace_ms):
            # a sort of the list is quicker than min() and max() of the column: rows are nearly in order
            timestamps = sorted(cast(memoryview, batch.timestamps).tolist())
            _check_window(timestamps[0], timestamps[-1], None, limits, now_ms)
        return
    entries = request.series
    if limits.max_series_per_request and len(entries) > limits.max_series_per_request:
        _too_many_series(len(entries), limits)
    if limits.max_samples_per_request:
        samples = sum(len(s.timestamps) + len(s.histograms) for s in entries)
        if samples > limits.max_samples_per_request:
            _too_many_samples(samples, limits)
    if limits.max_sample_age_ms or limits.future_grace_ms:
        for series in entries:
            _check_series_window(series, limits, now_ms)


def _check_series_window(series: TimeSeries, limits: WriteLimits, now_ms: int) -> None:
    timestamps: Sequence[int] = series.timestamps
    if timestamps:
        _check_window(min(timestamps), max(timestamps), series, limits, now_ms)
    if series.histograms:
        stamps = [h.timestamp for h in series.histograms]
        _check_window(min(stamps), max(stamps), series, limits, now_ms)


def _check_window(
    oldest: int, newest: int, series: TimeSeries | None, limits: WriteLimits, now_ms: int
) -> None:
    if limits.future_grace_ms and newest > now_ms + limits.future_grace_ms:
        raise LimitExceeded(
            "sample_too_new",
            f"a sample{_of(series)} has timestamp {newest}, {(newest - now_ms) / 1000:.0f} s ahead of the "
            f"server's clock; more than {limits.future_grace_ms / 1000:g} s ahead is refused "
            "(check the sender's clock, or raise --future-grace-period)",
            limits.future_grace_ms,
            "--future-grace-period",
        )
    if limits.max_sample_age_ms and oldest < now_ms - limits.max_sample_age_ms:
        raise LimitExceeded(
            "sample_too_old",
            f"a sample{_of(series)} has timestamp {oldest}, {(now_ms - oldest) / 1000:.0f} s old; samples "
            f"older than {limits.max_sample_age_ms / 1000:g} s are refused "
            "(raise --max-sample-age, or --retention which it follows by default)",
            limits.max_sample_age_ms,
            "--max-sample-age",
        )


def _of(series: TimeSeries | None) -> str:
    return "" if series is None else f" of {describe_labels(series.labels)}"


def _too_many_series(count: int, limits: WriteLimits) -> None:
    raise LimitExceeded(
        "too_many_series",
        f"the request holds {count} series, above the limit of {limits.max_series_per_request} per request "
        "(send smaller batches, e.g. queue_config.max_samples_per_send, or raise --max-series-per-request)",
        limits.max_series_per_request,
        "--max-series-per-request",
    )


def _too_many_samples(count: int, limits: WriteLimits) -> None:
    raise LimitExceeded(
        "too_many_samples",
        f"the request holds {count} samples, above the limit of {limits.max_samples_per_request} per "
        "request (send smaller batches, or raise --max-samples-per-request)",
        limits.max_samples_per_request,
        "--max-samples-per-request",
    )
