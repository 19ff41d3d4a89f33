"""The crash check's two sides: a child process that writes through a backend, and its driver.

The child (``python -m remote_storage.testing.crash FACTORY URL``) opens the
backend with ``FACTORY(URL)``, starts it, then reads one write request per
line on stdin (JSON: tenant and series with value bits) and answers ``ok``
once ``write`` returned, or ``error ...``. The driver sends requests, waits
for each acknowledgement, sends one more and kills the child with SIGKILL
without waiting: no ``close``, no flush at exit, no ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from remote_storage.storage import Context, Labels, TimeSeries, WriteRequest, float_bits, float_from_bits

__all__ = ["CrashOutcome", "CrashRequest", "write_then_kill"]

#: seconds to wait for the child's start and for each acknowledgement
ANSWER_TIMEOUT = 60.0


@dataclass(frozen=True)
class CrashRequest:
    tenant: str
    series: tuple[TimeSeries, ...]

    def encode(self) -> str:
        rows = [[list(s.labels), list(s.timestamps), [float_bits(v) for v in s.values]] for s in self.series]
        return json.dumps({"tenant": self.tenant, "series": rows}) + "\n"

    @classmethod
    def decode(cls, line: str) -> CrashRequest:
        data = json.loads(line)
        series = tuple(
            TimeSeries(Labels(tuple(pair) for pair in labels), times, [float_from_bits(b) for b in values])
            for labels, times, values in data["series"]
        )
        return cls(data["tenant"], series)


@dataclass(frozen=True)
class CrashOutcome:
    #: requests the child acknowledged before it was killed
    acknowledged: list[CrashRequest]
    #: the request sent just before the kill, stored whole or not at all
    in_flight: CrashRequest


def write_then_kill(
    factory: str, url: str, requests: Sequence[CrashRequest], last: CrashRequest, log: Path
) -> CrashOutcome:
    """Write ``requests`` through a child process, send ``last``, SIGKILL the child at once."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the author's modules import there too
    with log.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "remote_storage.testing.crash", factory, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    try:
        assert child.stdin is not None and child.stdout is not None
        answers = _Lines(child, log)
        answers.expect("ready", "start the backend")
        acknowledged = []
        for number, request in enumerate(requests):
            child.stdin.write(request.encode().encode())
            child.stdin.flush()
            answers.expect("ok", f"write request {number}")
            acknowledged.append(request)
        child.stdin.write(last.encode().encode())
        child.stdin.flush()
        child.send_signal(signal.SIGKILL)
        child.wait(ANSWER_TIMEOUT)
        return CrashOutcome(acknowledged, last)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(ANSWER_TIMEOUT)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


class _Lines:
    """Lines from the child's stdout, each awaited with a bound."""

    def __init__(self, child: subprocess.Popen[bytes], log: Path) -> None:
        self.child = child
        self.log = log
        self.selector = selectors.DefaultSelector()
        assert child.stdout is not None
        self.selector.register(child.stdout, selectors.EVENT_READ)

    def expect(self, word: str, what: str) -> None:
        assert self.child.stdout is not None
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not self.selector.select(max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"crash check: the child process did not {what} within {ANSWER_TIMEOUT:g}s"
                )
        line = self.child.stdout.readline().decode(errors="replace").strip()
        if line != word:
            if not line:
                self.child.wait(ANSWER_TIMEOUT)  # it exited: its stderr is complete
            stderr = self.log.read_text(errors="replace")[-2000:]
            raise AssertionError(
                f"crash check: the child process could not {what}: {line or 'it exited'}\n{stderr}"
            )


async def _serve(factory: str, url: str) -> None:
    from remote_storage.testing.harness import load_factory  # the child alone needs it

    storage = load_factory(factory)(url)
    await storage.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        request = CrashRequest.decode(line)
        try:
            await storage.write(Context(tenant=request.tenant), WriteRequest(list(request.series)))
        except Exception as error:  # the driver reports it
            print(f"error {type(error).__name__}: {error}".replace("\n", " "), flush=True)
        else:
            print("ok", flush=True)
    await storage.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
