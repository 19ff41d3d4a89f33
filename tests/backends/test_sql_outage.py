"""The SQL backend rides out a PostgreSQL outage without a restart of the adapter.

An adapter writes to a private PostgreSQL server under steady load; then
the server goes away for a few seconds, in one of two ways:

* ``stopped``: shut down, then started again on the same data directory and
  port (connections are closed, new ones refused);
* ``frozen``: every server process stopped with SIGSTOP, then continued
  (connections stay open and nothing answers: a hung server or a dead
  network), with ``?write_timeout=3s``.

Meanwhile every write is answered 503 within a bounded time, ``GET
/-/ready`` is 503 naming the cause, and (stopped) a remote read is 503;
within 5 s of the server answering again writes are acknowledged and
``/-/ready`` is 200; and every write that was acknowledged at any time reads
back once, bit for bit.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from remote_storage.protocol.negotiation import ResponseType
from tests.support import wire
from tests.support.adapter import Adapter, start_adapter
from tests.support.load import HttpClient, WritePlan, check_well_formed, limit, read_all
from tests.support.net import Deadline, http_get, poll_until
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.procs import Processes

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITERS = 2
#: Pause between one writer's requests: steady load, not a flood of instant 503s.
PACE = 0.02
MAX_REQUESTS = 5_000
#: Every write is answered within this bound, outage or not (Prometheus waits 30 s).
ANSWER_BOUND = 10.0
#: The database stays down at least this long.
OUTAGE_SECONDS = 3.0
#: Writes are acknowledged again, and /-/ready is 200, within this long after the database answers.
RECOVERY_BOUND = 5.0
TEST_TIMEOUT = 240.0
READY_TIMEOUT = 30.0


@dataclass
class Answer:
    seq: int
    sent: float
    answered: float
    status: int | None  # None: no response (the connection failed)
    body: bytes


class SteadyWriter(threading.Thread):
    """Sends the plan's requests one after another until stopped, whatever the answers."""

    def __init__(self, plan: WritePlan, writer: int, address: str, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{writer}", daemon=True)
        self.plan, self.writer, self.address, self.stop_event = plan, writer, address, stop
        self.answers: list[Answer] = []
        self.crashed: BaseException | None = None

    def run(self) -> None:
        try:
            with HttpClient(self.address, timeout=ANSWER_BOUND * 2) as client:
                for seq in range(MAX_REQUESTS):
                    if self.stop_event.wait(PACE):
                        return
                    body = wire.v1_body(self.plan.request(self.writer, seq))
                    sent = time.monotonic()
                    try:
                        status, text = client.post("/api/v1/write", body, wire.V1_HEADERS)
                    except (OSError, http.client.HTTPException) as exc:
                        status, text = None, repr(exc).encode()
                    self.answers.append(Answer(seq, sent, time.monotonic(), status, text))
        except BaseException as exc:
            self.crashed = exc


def answers(writers: list[SteadyWriter]) -> list[Answer]:
    return [a for w in writers for a in list(w.answers)]


def acknowledged(writers: list[SteadyWriter], sent_after: float = 0.0) -> int:
    return sum(1 for a in answers(writers) if a.status == 204 and a.sent >= sent_after)


def readback_problems(plan: WritePlan, writers: list[SteadyWriter], address: str) -> list[str]:
    """Every acknowledged request stored whole; any other request whole or not at all."""
    series = read_all(address, plan)
    problems = check_well_formed(plan, series)  # also catches a sample stored twice
    stored = {(item.labels.get("series"), ts) for item in series for ts in item.timestamps}
    for w in writers:
        for a in w.answers:
            keys = plan.sample_keys(w.writer, a.seq)
            present = sum(key in stored for key in keys)
            if a.status == 204 and present != len(keys):
                problems.append(
                    f"writer {w.writer} request {a.seq}: acknowledged, {present} of {len(keys)} stored"
                )
            elif 0 < present < len(keys):
                problems.append(f"writer {w.writer} request {a.seq} ({a.status}): partly stored")
    return problems


def ready_status(served: Adapter) -> tuple[int, str]:
    status, body = http_get(f"{served.url}/-/ready", timeout=ANSWER_BOUND)
    return status, body.decode(errors="replace")


Outage = tuple[Callable[[PostgresServer], object], Callable[[PostgresServer], None], str, str]
#: kind of outage -> (start it, end it, storage URL options, words of the /-/ready reason)
OUTAGES: dict[str, Outage] = {
    "stopped": (PostgresServer.stop, PostgresServer.start_again, "", "unreachable"),
    "frozen": (PostgresServer.freeze, PostgresServer.thaw, "?write_timeout=3s", "has not finished"),
}


@pytest.mark.parametrize("kind", list(OUTAGES))
def test_writes_fail_fast_during_a_postgresql_outage_and_resume_after_it(
    processes: Processes, tmp_path: Path, kind: str
) -> None:
    begin_outage, end_outage, options, reason_words = OUTAGES[kind]
    deadline = Deadline(TEST_TIMEOUT)
    plan = WritePlan("outage_test", writers=WRITERS)
    stop = threading.Event()
    with start_postgres(tmp_path / "postgres-logs") as server, server.database() as url:
        # One process, so that every /-/ready probe asks the one whose writes met the outage.
        served = start_adapter(processes, url + options, extra_args=("--workers", "1"))
        served.wait_ready(deadline.remaining(READY_TIMEOUT))
        writers = [SteadyWriter(plan, w, served.address, stop) for w in range(WRITERS)]
        for writer in writers:
            writer.start()
        try:
            poll_until(
                lambda: True if acknowledged(writers) >= 20 else None,
                deadline.remaining(60),
                "20 acknowledged writes before the outage",
            )
            down_at = time.monotonic()
            begin_outage(server)

            def not_ready() -> str | None:
                status, body = ready_status(served)
                return body if status == 503 else None

            reason = poll_until(not_ready, deadline.remaining(ANSWER_BOUND), "/-/ready 503 during the outage")
            assert reason_words in reason and "\n" not in reason.strip(), reason

            if kind == "stopped":  # (a frozen server makes a read wait for --read-timeout)
                for accepted in (ResponseType.SAMPLES, ResponseType.STREAMED_XOR_CHUNKS):
                    with HttpClient(served.address) as client:
                        query = wire.read_body(plan.query(), accepted=(accepted,))
                        status, body = client.post("/api/v1/read", query, wire.READ_HEADERS)
                    assert status == 503, (accepted, status, body[:300])
                    assert b"unavailable" in body, body
                status, body = http_get(f"{served.url}/api/v1/metadata", timeout=ANSWER_BOUND)
                assert status == 503, (status, body[:300])

            def outage_seen() -> bool | None:
                refused = sum(1 for a in answers(writers) if a.status == 503 and a.sent >= down_at)
                long_enough = time.monotonic() - down_at >= OUTAGE_SECONDS
                return True if refused >= 5 and long_enough else None

            poll_until(outage_seen, deadline.remaining(60), "writes answered 503 for a few seconds")
            end_outage(server)
            back_at = time.monotonic()
            poll_until(
                lambda: True if acknowledged(writers, sent_after=back_at) else None,
                RECOVERY_BOUND,
                "a write acknowledged after PostgreSQL answers again",
            )
            poll_until(
                lambda: True if ready_status(served)[0] == 200 else None,
                max(back_at + RECOVERY_BOUND - time.monotonic(), 0.5),
                "/-/ready 200 after PostgreSQL answers again",
            )
            poll_until(
                lambda: True if acknowledged(writers, sent_after=back_at) >= 20 else None,
                deadline.remaining(60),
                "20 acknowledged writes after the outage",
            )
        finally:
            if kind == "frozen":
                server.thaw()  # whatever happened: a frozen server cannot be stopped gracefully
            stop.set()
            for writer in writers:
                writer.join(deadline.remaining(ANSWER_BOUND * 3))
        assert not [w.name for w in writers if w.is_alive()], "writers still running"
        assert not [w.crashed for w in writers if w.crashed]
        served.process.check_alive()  # the same process throughout

        everything = answers(writers)
        slow = [a for a in everything if a.answered - a.sent > ANSWER_BOUND]
        assert not slow, f"{len(slow)} writes took longer than {ANSWER_BOUND}s, first: {slow[0]}"
        unexpected = [a for a in everything if a.status not in (204, 503)]
        assert not unexpected, [(a.status, a.body[:200]) for a in unexpected[:5]]
        during = [a for a in everything if a.sent >= down_at and a.answered <= back_at]
        assert during and all(a.status == 503 for a in during), [a.status for a in during]
        assert all(b"\n" not in a.body.rstrip(b"\n") for a in during), during[0].body
        refused = sum(a.status == 503 for a in everything)
        print(f"{acknowledged(writers)} writes acknowledged, {refused} refused with 503")

        problems = readback_problems(plan, writers, served.address)
        assert not problems, limit(problems)
