"""Back-pressure: bounds on the work in flight, and a 429 beyond them instead of a queue.

Two bounds keep a server's memory and CPU within what the operator chose,
however many senders and readers arrive at once:

* :class:`ByteBudget` bounds the bytes of remote-write bodies being handled
  (``--max-inflight-write-bytes``). A request reserves its compressed size
  before its body is read (the ``Content-Length``; a body without one
  reserves ``--max-request-bytes`` until it has arrived), then its
  decompressed size as the snappy header declares it, before anything is
  decompressed. Both stay reserved until the request is answered: the
  decompressed payload and the objects decoded from it live that long.
* :class:`Slots` bounds the remote-read requests being served
  (``--max-inflight-reads``).

Nothing waits for room: a request that does not fit is answered at once
with 429 and a ``Retry-After`` header (:class:`~remote_storage.errors.Overloaded`),
so memory never grows with the number of waiting requests. A request larger
than the whole budget is admitted when nothing else is in flight, so every
request that fits ``--max-request-bytes`` can eventually succeed.

>>> budget = ByteBudget(100, "write bytes", "--max-inflight-write-bytes")
>>> with budget.reserve() as held:
...     held.add(60)
...     budget.in_use
60
>>> budget.in_use
0
"""

from __future__ import annotations

from types import TracebackType

from remote_storage.errors import Overloaded

__all__ = ["RETRY_AFTER_SECONDS", "ByteBudget", "Reservation", "Slot", "Slots"]

#: The ``Retry-After`` of a 429: work in flight here finishes within about a second.
RETRY_AFTER_SECONDS = 1


class ByteBudget:
    """At most ``capacity`` bytes reserved at once (0: no bound); see the module docstring."""

    def __init__(self, capacity: int, what: str, setting: str) -> None:
        if capacity < 0:
            raise ValueError(f"{setting}: capacity must be 0 (no bound) or positive, got {capacity}")
        self.capacity = capacity
        self.what = what
        self.setting = setting
        self.in_use = 0
        #: requests refused because the budget was full
        self.refused = 0

    def reserve(self) -> Reservation:
        """An empty reservation; grow it with :meth:`Reservation.add`, release it by leaving ``with``."""
        return Reservation(self)


class Reservation:
    """The bytes one request holds of a :class:`ByteBudget`."""

    __slots__ = ("budget", "held", "wanted")

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.wanted = 0
        self.held = 0

    def add(self, size: int) -> None:
        """Reserve ``size`` more bytes, or raise :class:`Overloaded` (holding what was held before).

        What one request holds is capped at the capacity: a request larger
        than the budget fits when it is alone.
        """
        budget = self.budget
        if budget.capacity == 0 or size <= 0:
            return
        wanted = self.wanted + size
        held = min(wanted, budget.capacity)
        extra = held - self.held
        if budget.in_use + extra > budget.capacity:
            budget.refused += 1
            raise Overloaded(budget.what, budget.capacity, budget.setting, RETRY_AFTER_SECONDS)
        budget.in_use += extra
        self.wanted = wanted
        self.held = held

    def release(self) -> None:
        self.budget.in_use -= self.held
        self.held = self.wanted = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class Slots:
    """At most ``limit`` holders at once (0: no bound)."""

    def __init__(self, limit: int, what: str, setting: str) -> None:
        if limit < 0:
            raise ValueError(f"{setting}: limit must be 0 (no bound) or positive, got {limit}")
        self.limit = limit
        self.what = what
        self.setting = setting
        self.in_use = 0
        #: requests refused because every slot was taken
        self.refused = 0

    def take(self) -> Slot:
        """A slot, released by leaving ``with``; raises :class:`Overloaded` when none is free."""
        if self.limit and self.in_use >= self.limit:
            self.refused += 1
            raise Overloaded(self.what, self.limit, self.setting, RETRY_AFTER_SECONDS)
        self.in_use += 1
        return Slot(self)


class Slot:
    """One taken slot of :class:`Slots`."""

    __slots__ = ("slots",)

    def __init__(self, slots: Slots) -> None:
        self.slots: Slots | None = slots

    def release(self) -> None:
        if self.slots is not None:
            self.slots.in_use -= 1
            self.slots = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
