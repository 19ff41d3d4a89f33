"""Active series per tenant: counted in half-window generations, limited per tenant, on a fake clock."""

from __future__ import annotations

import pytest

from remote_storage.active_series import ActiveSeries
from remote_storage.errors import LimitExceeded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keys(*names: str) -> list[bytes]:
    return [name.encode() for name in names]


def test_counts_distinct_series_per_tenant() -> None:
    active = ActiveSeries(limit=0, window=60.0, clock=Clock())
    active.admit("a", keys("x", "y", "x"))
    active.admit("a", keys("y", "z"))
    active.admit("b", keys("x"))
    assert active.count("a") == 3
    assert active.counts() == {"a": 3, "b": 1}
    assert active.count("nobody") == 0


def test_a_series_stays_active_between_half_and_a_whole_window_after_its_last_sample() -> None:
    clock = Clock()
    active = ActiveSeries(limit=0, window=60.0, clock=clock)
    active.admit("t", keys("old", "kept"))
    clock.now += 30.0  # next generation: both still active
    active.admit("t", keys("kept", "new"))
    assert active.count("t") == 3
    clock.now += 30.0  # "old" was last seen a whole window ago: gone
    assert active.count("t") == 2
    clock.now += 30.0
    assert active.count("t") == 0  # nothing since: gone, and the tenant forgotten
    assert active.counts() == {}
    active.admit("t", keys("a"))
    clock.now += 600.0  # many generations at once
    assert active.count("t") == 0


def test_limit_refuses_new_series_only_and_records_nothing_of_a_refused_write() -> None:
    clock = Clock()
    active = ActiveSeries(limit=3, window=60.0, clock=clock)
    active.admit("t", keys("a", "b"))
    with pytest.raises(LimitExceeded, match="has 2 active series and the request would add 2") as info:
        active.admit("t", keys("a", "c", "d"))
    assert info.value.kind == "too_many_active_series"
    assert info.value.flag == "--max-active-series"
    assert info.value.http_status == 400
    assert active.count("t") == 2
    active.admit("t", keys("a", "b", "c"))  # exactly at the limit
    active.admit("t", keys("c", "b", "a"))  # known series are never refused
    with pytest.raises(LimitExceeded):
        active.admit("t", keys("d"))
    active.admit("other", keys("d", "e", "f"))  # the limit is per tenant


def test_series_seen_in_the_previous_generation_are_not_new() -> None:
    clock = Clock()
    active = ActiveSeries(limit=2, window=60.0, clock=clock)
    active.admit("t", keys("a", "b"))
    clock.now += 30.0
    active.admit("t", keys("a", "b"))  # carried into the new generation: still 2, not 4
    assert active.count("t") == 2
    with pytest.raises(LimitExceeded):
        active.admit("t", keys("c"))
    clock.now += 30.0  # only "a" and "b" of the last generation remain; the limit still holds
    with pytest.raises(LimitExceeded):
        active.admit("t", keys("c"))
    clock.now += 60.0  # both aged out
    active.admit("t", keys("c", "d"))
    assert active.count("t") == 2


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        ActiveSeries(limit=-1, window=60.0)
    with pytest.raises(ValueError):
        ActiveSeries(limit=1, window=0.0)
