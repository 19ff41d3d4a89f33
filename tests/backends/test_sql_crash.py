"""Acknowledged writes survive SIGKILL of the adapter, on SQLite and on PostgreSQL.

Several writer threads send distinct remote-write requests; the adapter's
whole process group is killed while requests are in flight; a new adapter
on the same storage must then return every sample of every acknowledged
request exactly once and bit for bit, and of each request that got no answer
either all samples or none.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from remote_storage.storage import TimeSeries
from tests.support.adapter import Adapter
from tests.support.load import (
    Outcome,
    WritePlan,
    Writer,
    check_readback,
    ensure_writing,
    failures,
    limit,
    read_all,
    summarize,
)
from tests.support.net import Deadline, poll_until

pytestmark = pytest.mark.slow

WRITERS = 6
# Load runs at least this long, and until this many requests were
# acknowledged, before the kill.
LOAD_SECONDS = 2.0
MIN_ACKED = 50
TEST_TIMEOUT = 180.0
JOIN_TIMEOUT = 30.0
# Words a backend would log if it had to mend its storage before serving.
REPAIR_WORDS = re.compile(r"repair|corrupt|malformed|rebuil|salvag", re.IGNORECASE)


def kill_group(served: Adapter) -> None:
    """SIGKILL the adapter and every process it forked, and reap it."""
    os.killpg(served.process.pid, signal.SIGKILL)
    served.process.wait(JOIN_TIMEOUT)


def join_all(threads: list[Writer], deadline: Deadline) -> None:
    for thread in threads:
        thread.join(deadline.remaining(JOIN_TIMEOUT))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after the load: {stuck}"


def count_stored(plan: WritePlan, writers: list[Writer], stored: list[TimeSeries], outcome: Outcome) -> int:
    """How many requests with ``outcome`` have their first sample stored."""
    keys = {(item.labels.get("series"), ts) for item in stored for ts in item.timestamps}
    return sum(
        plan.sample_keys(w.writer, r.seq)[0] in keys for w in writers for r in w.sent if r.outcome is outcome
    )


def test_acknowledged_writes_survive_sigkill(sql_storage_url: str, adapter: Callable[..., Adapter]) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    is_sqlite = sql_storage_url.startswith("sqlite:")
    sqlite_file = Path(sql_storage_url.removeprefix("sqlite:///")) if is_sqlite else None
    first = adapter(sql_storage_url)
    plan = WritePlan("crash_test", writers=WRITERS)
    stop = threading.Event()
    load_started = time.monotonic()
    writers = [Writer(plan, w, first.address, load_started + 60.0, stop) for w in range(WRITERS)]
    for writer in writers:
        writer.start()
    try:

        def loaded() -> bool | None:
            first.process.check_alive()
            ensure_writing(writers)
            acked = sum(w.count(Outcome.ACKED) for w in writers)
            in_flight = any(w.in_flight for w in writers)
            long_enough = time.monotonic() - load_started >= LOAD_SECONDS
            return True if long_enough and acked >= MIN_ACKED and in_flight else None

        poll_until(loaded, deadline.remaining(60.0), f"{MIN_ACKED} acknowledged writes", interval=0.02)
        killed_at = time.monotonic()
        in_flight_at_kill = sum(w.in_flight for w in writers)
        kill_group(first)
    finally:
        stop.set()
        join_all(writers, deadline)

    early = failures(writers, killed_at=killed_at)
    if early:
        pytest.fail("requests failed before the kill:\n" + limit(early), pytrace=False)
    inode = sqlite_file.stat().st_ino if sqlite_file is not None else None

    second = adapter(sql_storage_url, timeout=deadline.remaining(60.0))
    stored = read_all(second.address, plan)
    unanswered_stored = count_stored(plan, writers, stored, Outcome.NO_RESPONSE)
    print(
        f"killed with {in_flight_at_kill} request(s) in flight: {summarize(writers)}; "
        f"{unanswered_stored} unanswered request(s) found stored"
    )
    problems = check_readback(plan, writers, stored)
    if problems:
        pytest.fail(
            f"after SIGKILL with {in_flight_at_kill} request(s) in flight ({summarize(writers)}):\n"
            + limit(problems),
            pytrace=False,
        )

    log = second.process.log_path.read_text(errors="replace")
    repairs = [line for line in log.splitlines() if REPAIR_WORDS.search(line)]
    assert not repairs, "the restarted adapter repaired its storage:\n" + "\n".join(repairs)
    if sqlite_file is not None:
        assert sqlite_file.stat().st_ino == inode, "the database file was replaced on restart"
        second.process.stop()
        with closing(sqlite3.connect(sqlite_file)) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
