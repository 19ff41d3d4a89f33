"""Native histograms between protobuf messages and :class:`~remote_storage.storage.Histogram`.

Remote write 1.0, 2.0 and remote read use the same field numbers for a
histogram, so one pair of functions serves all three message classes.
Integer or float is decided by which member of the ``count`` oneof is set, as
current Prometheus does.
"""

from __future__ import annotations

from typing import Any

from remote_storage.storage import Histogram, ResetHint

__all__ = ["from_proto", "to_proto"]


def from_proto(message: Any) -> Histogram:
    """Convert a v1, v2 or read-response ``Histogram`` message."""
    is_float = message.WhichOneof("count") == "count_float"
    if is_float:
        count: int | float = message.count_float
        zero_count: int | float = message.zero_count_float
        negative: tuple[int | float, ...] = tuple(message.negative_counts)
        positive: tuple[int | float, ...] = tuple(message.positive_counts)
    else:
        count = message.count_int
        zero_count = message.zero_count_int
        negative = tuple(message.negative_deltas)
        positive = tuple(message.positive_deltas)
    return Histogram(
        timestamp=message.timestamp,
        count=count,
        sum=message.sum,
        schema=message.schema,
        zero_threshold=message.zero_threshold,
        zero_count=zero_count,
        is_float=is_float,
        negative_spans=tuple((s.offset, s.length) for s in message.negative_spans),
        negative_buckets=negative,
        positive_spans=tuple((s.offset, s.length) for s in message.positive_spans),
        positive_buckets=positive,
        reset_hint=ResetHint(message.reset_hint),
        custom_values=tuple(message.custom_values),
    )


def to_proto(histogram: Histogram, message: Any) -> None:
    """Fill an empty ``Histogram`` message (any of the three schemas) in place."""
    message.timestamp = histogram.timestamp
    message.sum = histogram.sum
    message.schema = histogram.schema
    message.zero_threshold = histogram.zero_threshold
    if histogram.is_float:
        message.count_float = histogram.count
        message.zero_count_float = histogram.zero_count
        message.negative_counts.extend(histogram.negative_buckets)
        message.positive_counts.extend(histogram.positive_buckets)
    else:
        message.count_int = int(histogram.count)
        message.zero_count_int = int(histogram.zero_count)
        message.negative_deltas.extend(int(b) for b in histogram.negative_buckets)
        message.positive_deltas.extend(int(b) for b in histogram.positive_buckets)
    for offset, length in histogram.negative_spans:
        message.negative_spans.add(offset=offset, length=length)
    for offset, length in histogram.positive_spans:
        message.positive_spans.add(offset=offset, length=length)
    message.reset_hint = int(histogram.reset_hint)
    message.custom_values.extend(histogram.custom_values)
