"""What the service did lately, kept in memory for the status page: ingestion per interval and errors.

Both are small and bounded: :class:`IngestHistory` keeps one counter per
``interval`` seconds over ``span`` seconds (90 counters by default), and
:class:`RecentErrors` the last ``size`` refused or failed requests. Both take
a clock, so tests move time by hand.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["IngestHistory", "RecentError", "RecentErrors"]


class IngestHistory:
    """Samples acknowledged per interval, for the last ``span`` seconds."""

    def __init__(
        self, interval: float = 10.0, span: float = 900.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.interval = interval
        self.slots = max(1, round(span / interval))
        self._clock = clock
        self._counts: deque[int] = deque([0] * self.slots, maxlen=self.slots)
        self._started = clock()
        self._current = self._slot(self._started)

    def _slot(self, now: float) -> int:
        return int(now // self.interval)

    def _advance(self) -> None:
        slot = self._slot(self._clock())
        passed = min(slot - self._current, self.slots)
        if passed > 0:
            self._counts.extend([0] * passed)
            self._current = slot

    def add(self, samples: int) -> None:
        self._advance()
        self._counts[-1] += samples

    def points(self) -> list[tuple[float, float]]:
        """``(start of interval, samples per second)``, oldest first; the last interval is still running."""
        self._advance()
        first = (self._current - self.slots + 1) * self.interval
        return [(first + i * self.interval, count / self.interval) for i, count in enumerate(self._counts)]

    def rate(self, seconds: float = 60.0) -> float:
        """Samples per second over about the last ``seconds``: whole intervals and the running one.

        The time counted never reaches back before the history started, so a
        service that has run for ten seconds shows the rate of those ten.
        """
        self._advance()
        now = self._clock()
        whole = max(0, min(self.slots - 1, round(seconds / self.interval) - 1))
        counts = list(self._counts)[len(self._counts) - 1 - whole :]
        covered = whole * self.interval + (now - self._current * self.interval)
        covered = min(covered, now - self._started)
        return sum(counts) / covered if covered > 0 else 0.0


@dataclass(frozen=True)
class RecentError:
    """One refused or failed request."""

    time: float
    handler: str
    status: int
    reason: str
    message: str
    tenant: str
    remote: str


class RecentErrors:
    """The last ``size`` errors, newest first."""

    #: Characters of a message kept: enough for the one-line reasons the service gives.
    MESSAGE_CHARS = 300

    def __init__(self, size: int = 20, clock: Callable[[], float] = time.time) -> None:
        self._errors: deque[RecentError] = deque(maxlen=size)
        self._clock = clock

    def add(self, handler: str, status: int, reason: str, message: str, tenant: str, remote: str) -> None:
        short = message if len(message) <= self.MESSAGE_CHARS else message[: self.MESSAGE_CHARS] + "..."
        self._errors.appendleft(RecentError(self._clock(), handler, status, reason, short, tenant, remote))

    def list(self) -> list[RecentError]:
        return list(self._errors)
