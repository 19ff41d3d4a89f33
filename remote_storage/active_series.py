"""Active series per tenant, and the limit on them (``--max-active-series``).

A series is *active* while it receives samples: it counts from its first
sample until it has received none for between half the window and the
whole window (``--active-series-window``, default 1h). The counting is done
in generations of half a window each: a series seen in the current or the
previous generation is active. That bounds memory by the active series (the
series' key as the request carried it, its encoded label set: a few hundred
bytes each, as the backends' own caches of series ids hold), not by every
series ever written, and costs one set lookup per row of a request, in C,
in the usual case where no series is new.

A write whose new series would take its tenant past the limit is refused
whole with 400 (:class:`~remote_storage.errors.LimitExceeded`), before the
backend sees it; series already active are never refused. The series of a
write are counted when it is admitted, so those of a write the backend then
refuses count as well until they age out. The count is
this process's: requests that run concurrently may pass the limit by their
new series, a restart starts from zero, with ``--workers N`` each process
counts the series it receives, and one series sent under two encodings
(sorted and unsorted label order, or remote write 1.0 and 2.0) counts twice.
It is a guard against runaway cardinality, not an exact quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Hashable

from remote_storage.errors import LimitExceeded

__all__ = ["ActiveSeries"]


class _Tenant:
    __slots__ = ("current", "previous", "previous_only")

    def __init__(self) -> None:
        self.current: set[Hashable] = set()
        self.previous: set[Hashable] = set()
        #: members of ``previous`` not in ``current``: the active count is len(current) + this
        self.previous_only = 0

    @property
    def count(self) -> int:
        return len(self.current) + self.previous_only


class ActiveSeries:
    """Counts each tenant's active series by their encoding keys, and checks writes against a limit.

    >>> active = ActiveSeries(limit=2, window=3600.0)
    >>> active.admit("t", [b"a", b"b"]); active.count("t")
    2
    >>> active.admit("t", [b"c"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    remote_storage.errors.LimitExceeded: ...
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 0 or window <= 0:
            raise ValueError("limit must be 0 (none) or positive, window positive")
        self.limit = limit
        self.generation = window / 2
        self._clock = clock
        self._started = clock()
        self._tenants: dict[str, _Tenant] = {}

    def count(self, tenant: str) -> int:
        """Active series of ``tenant`` now."""
        self._rotate()
        found = self._tenants.get(tenant)
        return 0 if found is None else found.count

    def counts(self) -> dict[str, int]:
        """Active series of every tenant with any."""
        self._rotate()
        return {name: t.count for name, t in self._tenants.items() if t.count}

    def admit(self, tenant: str, keys: Collection[Hashable]) -> None:
        """Record the series of a write, or raise :class:`LimitExceeded` and record nothing.

        ``keys`` are the request's series keys (repeats allowed).
        """
        self._rotate()
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = _Tenant()
        current = state.current
        if current.issuperset(keys):  # the usual case: nothing new this generation
            return
        fresh = set(keys).difference(current)
        revived = fresh & state.previous if state.previous_only else set()
        added = len(fresh) - len(revived)
        if self.limit and added and state.count + added > self.limit:
            raise LimitExceeded(
                "too_many_active_series",
                f"tenant {tenant!r} has {state.count} active series and the request would add {added}, "
                f"above the limit of {self.limit} (reduce the cardinality of what is sent, "
                "or raise --max-active-series)",
                self.limit,
                "--max-active-series",
            )
        current |= fresh
        state.previous_only -= len(revived)

    def _rotate(self) -> None:
        elapsed = self._clock() - self._started
        if elapsed < self.generation:
            return
        steps = int(elapsed // self.generation)
        self._started += steps * self.generation
        for name, state in list(self._tenants.items()):
            if steps == 1:
                state.previous = state.current
                state.previous_only = len(state.current)
            else:  # two generations or more passed: nothing is active any more
                state.previous = set()
                state.previous_only = 0
            state.current = set()
            if not state.previous:
                del self._tenants[name]
