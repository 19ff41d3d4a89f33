"""Concurrent writers and readers against one adapter, on SQLite and on PostgreSQL.

Eight writers send distinct samples (two series every writer writes, each
writer its own timestamps, and two series of its own) while four readers
query throughout, and the backend compacts rows into chunks every 200 ms
(late samples of the shared series included). Every request must succeed, every read must be well formed
(series sorted and unique, timestamps strictly increasing, values bit-exact),
and at the end every acknowledged sample must be stored exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.support.adapter import Adapter
from tests.support.load import (
    Reader,
    WritePlan,
    Writer,
    check_readback,
    failures,
    limit,
    read_all,
    summarize,
)
from tests.support.net import Deadline

pytestmark = pytest.mark.slow

WRITERS = 8
READERS = 4
LOAD_SECONDS = 4.0
TEST_TIMEOUT = 180.0
JOIN_TIMEOUT = 60.0


def test_concurrent_writes_and_reads(sql_storage_url: str, adapter: Callable[..., Adapter]) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    # Compact all but the newest millisecond, five times a second: reads meet rows, chunks and
    # compactions in progress.
    separator = "&" if "?" in sql_storage_url else "?"
    served = adapter(f"{sql_storage_url}{separator}head=1ms&compact_interval=200ms")
    plan = WritePlan("concurrency_test", writers=WRITERS)
    stop = threading.Event()
    until = time.monotonic() + LOAD_SECONDS
    writers = [Writer(plan, w, served.address, until, stop) for w in range(WRITERS)]
    readers = [Reader(plan, r, served.address, until + JOIN_TIMEOUT, stop) for r in range(READERS)]
    threads: list[threading.Thread] = [*writers, *readers]
    for thread in threads:
        thread.start()
    try:
        for writer in writers:
            writer.join(deadline.remaining(JOIN_TIMEOUT))
    finally:
        # Readers run until the last write is answered, then stop.
        stop.set()
        for thread in threads:
            thread.join(deadline.remaining(JOIN_TIMEOUT))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after the load: {stuck}"
    served.process.check_alive()
    reads = sum(reader.reads for reader in readers)
    print(f"{summarize(writers)}; {reads} reads")

    failed = failures(writers)
    if failed:
        pytest.fail(f"writes failed ({summarize(writers)}):\n" + limit(failed), pytrace=False)
    read_problems = [f"reader {r.reader} {p}" for r in readers for p in r.problems]
    if read_problems:
        pytest.fail(f"reads failed during the load ({reads} reads):\n" + limit(read_problems), pytrace=False)
    assert all(reader.reads for reader in readers), [reader.reads for reader in readers]

    problems = check_readback(plan, writers, read_all(served.address, plan))
    if problems:
        pytest.fail(f"after the load ({summarize(writers)}):\n" + limit(problems), pytrace=False)
