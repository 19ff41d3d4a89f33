"""The progress line on stderr while a run goes on.

On a terminal the line is rewritten in place twice a second; otherwise
(a log file, CI) a new line is written every few seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from remote_storage.loadgen.report import Tally, format_rate

__all__ = ["Progress"]

TTY_INTERVAL = 0.5
LOG_INTERVAL = 5.0


class Progress:
    """Shows requests done, the current sample rate and errors of a running :class:`Tally`."""

    def __init__(self, stream: TextIO, total: int | None, *, tty: bool | None = None) -> None:
        self._stream = stream
        self._total = total
        self._tty = stream.isatty() if tty is None else tty
        self.interval = TTY_INTERVAL if self._tty else LOG_INTERVAL
        self._started = time.monotonic()
        self._last_time = self._started
        self._last_accepted = 0
        self._shown = False

    def line(self, tally: Tally) -> str:
        """The progress text for ``tally`` now; the rate is over the time since the previous line."""
        now = time.monotonic()
        elapsed = now - self._started
        span = now - self._last_time
        rate = (tally.samples_accepted - self._last_accepted) / span if span > 0 else 0.0
        self._last_time, self._last_accepted = now, tally.samples_accepted
        total = f"/{self._total:,}" if self._total is not None else ""
        return (
            f"loadgen {elapsed:6.1f}s  {tally.requests:,}{total} requests  "
            f"{format_rate(rate)}  {tally.failed:,} errors"
        )

    def show(self, tally: Tally) -> None:
        text = self.line(tally)
        if self._tty:
            self._stream.write("\r" + text + "\x1b[K")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        """End the rewritten line so that what follows starts on its own line."""
        if self._tty and self._shown:
            self._stream.write("\n")
            self._stream.flush()

    async def run(self, tally: Tally) -> None:
        """Show progress every :attr:`interval` seconds until cancelled."""
        self._started = self._last_time = time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            self.show(tally)
