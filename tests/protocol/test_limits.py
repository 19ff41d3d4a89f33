"""Write limits: label sizes and counts at validation, series, samples and timestamps per request."""

from __future__ import annotations

import pytest

from remote_storage.errors import InvalidLabels, LimitExceeded
from remote_storage.protocol.limits import WriteLimits, check_request, describe_labels, utf8_length
from remote_storage.protocol.validation import LabelValidator
from remote_storage.protocol.write import decode_v1, encode_v1
from remote_storage.storage import Histogram, Labels, TimeSeries, WriteRequest

NOW = 1_700_000_000_000


def validator(**limits: int) -> LabelValidator:
    return LabelValidator(limits=WriteLimits(**limits))


def test_lengths_are_counted_in_utf8_bytes() -> None:
    assert utf8_length("abc") == 3
    assert utf8_length("é") == 2
    assert utf8_length("€" * 10) == 30
    check = validator(max_label_value_length=10)
    assert check((("__name__", "up"), ("v", "é" * 5))) == Labels((("__name__", "up"), ("v", "é" * 5)))
    with pytest.raises(LimitExceeded, match="is 12 bytes, above the limit of 10") as info:
        check((("__name__", "up"), ("v", "é" * 6)))
    assert info.value.kind == "label_value_too_long"
    assert info.value.flag == "--max-label-value-length"
    assert info.value.http_status == 400


def test_metric_name_counts_as_a_value_and_names_have_their_own_limit() -> None:
    check = validator(max_label_name_length=8, max_label_value_length=5)
    with pytest.raises(LimitExceeded, match="label value of '__name__' is 6 bytes"):
        check((("__name__", "abcdef"),))
    assert len(check((("__name__", "abcde"), ("instance", "h")))) == 2
    with pytest.raises(LimitExceeded, match="label name of 'instances' is 9 bytes") as info:
        check((("__name__", "up"), ("instances", "h")))
    assert info.value.kind == "label_name_too_long"


def test_zero_turns_a_limit_off() -> None:
    check = validator(max_label_name_length=0, max_label_value_length=0, max_labels_per_series=0)
    pairs = (("__name__", "up"), *((f"n{i:04}" * 300, "v" * 5000) for i in range(100)))
    assert len(check(pairs)) == 101


def test_labels_per_series() -> None:
    check = validator(max_labels_per_series=3)
    assert len(check((("__name__", "up"), ("a", "1"), ("b", "2")))) == 3
    with pytest.raises(LimitExceeded, match="has 4 labels, above the limit of 3") as info:
        check((("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")))
    assert info.value.kind == "too_many_labels"


def test_unsorted_names_are_sorted_and_duplicates_refused_wherever_they_are() -> None:
    check = validator()
    assert check((("z", "1"), ("__name__", "up"), ("a", "2"))) == Labels(
        (("__name__", "up"), ("a", "2"), ("z", "1"))
    )
    with pytest.raises(InvalidLabels, match="'z' appears more than once"):
        check((("z", "1"), ("__name__", "up"), ("z", "2")))
    with pytest.raises(InvalidLabels, match="'a' appears more than once"):
        check((("__name__", "up"), ("a", "1"), ("a", "1")))


def test_messages_stay_short_whatever_the_label_sizes() -> None:
    huge = "x" * 1_000_000
    with pytest.raises(LimitExceeded) as info:
        validator()((("__name__", "up"), ("big", huge)))
    assert len(str(info.value)) < 600
    assert "\n" not in str(info.value)
    shown = describe_labels([(f"name{i}", huge) for i in range(50)])
    assert len(shown) < 450
    assert shown.endswith("...}")


def batch_request(count: int, timestamps: list[int] | None = None, series: int | None = None) -> WriteRequest:
    series = count if series is None else series
    stamps = timestamps or [NOW] * count
    body = encode_v1(
        TimeSeries(Labels((("__name__", f"s{i % series}"),)), [stamps[i]], [1.0]) for i in range(count)
    )
    request = decode_v1(body)
    assert request.batch is not None  # the columns path Prometheus' bodies take
    return request


def series_request(entries: list[TimeSeries]) -> WriteRequest:
    return WriteRequest(entries)


def up(timestamps: list[int], name: str = "up") -> TimeSeries:
    return TimeSeries(Labels((("__name__", name),)), timestamps, [1.0] * len(timestamps))


def test_series_and_samples_per_request_in_both_request_forms() -> None:
    limits = WriteLimits(max_series_per_request=3, max_samples_per_request=5)
    check_request(batch_request(5, series=3), limits, NOW)  # 5 rows of 3 series: within both
    with pytest.raises(LimitExceeded, match="holds 4 series") as info:
        check_request(batch_request(4), limits, NOW)
    assert info.value.kind == "too_many_series"
    with pytest.raises(LimitExceeded, match="holds 6 samples") as info:
        check_request(batch_request(6, series=2), limits, NOW)
    assert info.value.kind == "too_many_samples"
    check_request(series_request([up([NOW, NOW + 1], f"s{i}") for i in range(2)]), limits, NOW)
    with pytest.raises(LimitExceeded, match="holds 4 series"):
        check_request(series_request([up([NOW], f"s{i}") for i in range(4)]), limits, NOW)
    with pytest.raises(LimitExceeded, match="holds 6 samples"):
        check_request(
            series_request([up([NOW + i for i in range(3)], f"s{i}") for i in range(2)]), limits, NOW
        )


def test_histograms_count_as_samples_and_have_their_timestamps_checked() -> None:
    histogram = Histogram(
        timestamp=NOW + 3_600_000, count=1, sum=1.0, schema=0, zero_threshold=0.0, zero_count=1
    )
    entry = TimeSeries(Labels((("__name__", "h"),)), histograms=[histogram])
    with pytest.raises(LimitExceeded, match="holds 2 samples"):
        check_request(series_request([entry, up([NOW])]), WriteLimits(max_samples_per_request=1), NOW)
    with pytest.raises(LimitExceeded, match='of {__name__="h"} has timestamp') as info:
        check_request(series_request([up([NOW]), entry]), WriteLimits(), NOW)
    assert info.value.kind == "sample_too_new"


@pytest.mark.parametrize("form", ["batch", "series"])
def test_timestamp_window(form: str) -> None:
    limits = WriteLimits(max_sample_age_ms=3_600_000, future_grace_ms=600_000)

    def request(stamps: list[int]) -> WriteRequest:
        if form == "batch":
            return batch_request(len(stamps), stamps)
        return series_request([up(stamps)])

    check_request(request([NOW - 3_600_000, NOW + 600_000]), limits, NOW)  # both edges are inside
    with pytest.raises(LimitExceeded, match="600 s ahead|601 s ahead") as info:
        check_request(request([NOW, NOW + 600_001]), limits, NOW)
    assert info.value.kind == "sample_too_new"
    assert info.value.flag == "--future-grace-period"
    with pytest.raises(LimitExceeded, match="older than 3600 s are refused") as info:
        check_request(request([NOW - 3_600_001, NOW]), limits, NOW)
    assert info.value.kind == "sample_too_old"
    check_request(request([0, NOW + 10**9]), WriteLimits(future_grace_ms=0), NOW)  # both off
