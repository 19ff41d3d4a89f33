"""The SQL backend's writer: one thread, one connection, writes applied in groups, outages survived.

Every change to the database goes through one thread that owns one
connection. Jobs (write requests, compaction and retention slices) queue up
while a transaction runs and are taken as a *group* into the next one; the
backend applies each job in its own savepoint, and every job of the group is
answered after the one commit (a 2xx is only ever sent after that commit).

Outages. When the database goes away (PostgreSQL stopped or restarted, the
network gone, SQLite's file unusable), the writer:

* answers the group that met the failure with
  :class:`~remote_storage.errors.StorageUnavailable` (503: the sender
  retries), unless a fresh connection works at once, in which case the group
  is simply run again (a transaction that lost its connection committed
  nothing, or committed writes that are idempotent: a retry is harmless);
* then tries to connect again after 0.05 s, doubling the pause up to
  :data:`RECONNECT_MAX`, until the database answers;
* meanwhile refuses new jobs at once (:meth:`Writer.submit` raises
  ``StorageUnavailable`` naming the cause) and fails any that were already
  queued, so no write waits on a database that is not there;
* reports the cause through :meth:`Writer.unavailable`, which the backend
  passes to ``GET /-/ready`` (503 while it is not None).

A write is never answered later than the bound its caller waits
(:meth:`Writer.run`): a job still queued then is dropped, a job already
running may still commit, which a retry finds stored. A writer stuck in one
transaction for longer than that bound (a database that stopped answering
without closing the connection) also counts as unavailable. Given a
``ping_interval`` (the dialect's: PostgreSQL's), an idle writer checks its
connection that often, so readiness follows an outage even when no writes come.

Public API (what the backend and tests use)::

    writer = Writer(engine, apply_group, where="database ...", timeout=15.0)
    writer.start()
    future = writer.submit(Job(apply))   # concurrent.futures.Future, done after the commit
    await writer.run(job)                # submit and wait, at most the timeout
    writer.pending                       # jobs queued, not yet taken into a transaction
    writer.unavailable()                 # None, or why writes are refused now
    writer.is_alive(); writer.stop()

A :class:`Job` is ``Job(apply)`` with ``apply(connection, job)`` run in its own
savepoint of the group's transaction; write jobs also carry a tenant and the
encoding keys of their series, whose ids the backend resolves before ``apply``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from remote_storage.errors import StorageUnavailable
from remote_storage.storage import Labels

__all__ = [
    "GROUP_ATTEMPTS",
    "MAX_GROUP",
    "RECONNECT_MAX",
    "Job",
    "Writer",
    "database_unavailable",
    "first_line",
]

log = logging.getLogger("remote_storage.backends.sql")

#: Most jobs coalesced into one transaction.
MAX_GROUP = 64
#: Transactions a group gets when PostgreSQL aborts it for a deadlock or a serialization conflict
#: with another process (SQLSTATE 40P01, 40001), or when its connection was lost and a new one works.
GROUP_ATTEMPTS = 4
_RETRIED_STATES = frozenset({"40P01", "40001"})
#: First pause between connection attempts while the database is unreachable; it doubles up to
#: RECONNECT_MAX, so a database that comes back is found within about a second.
RECONNECT_FIRST = 0.05
RECONNECT_MAX = 1.0


@dataclass
class Job:
    """One unit of work for the writer thread, answered through ``future``."""

    apply: Callable[[Connection, Job], None]
    tenant: str = ""
    #: encoding keys of the job's series (or of its rows, for a batch; keys may repeat)
    keys: Sequence[Hashable] = ()
    #: ``labels(i)`` is the label set of ``keys[i]`` (decoding may be lazy)
    labels: Callable[[int], Labels] = field(default=lambda index: Labels())
    #: series ids of ``keys``, in the same order: those already known (None for the others) when
    #: submitted, all of them once the writer has resolved them, before ``apply``
    ids: list[Any] = field(default_factory=list)
    future: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)

    def labels_of(self, series_id: int) -> Labels:
        """Labels of one of the job's series (for messages)."""
        return next(self.labels(index) for index, i in enumerate(self.ids) if i == series_id)


#: Runs a group in one transaction and commits it; returns each job's outcome (None: applied, or
#: the exception that job alone is answered with). Raising fails (or retries) the whole group.
ApplyGroup = Callable[[Connection, list[Job]], list[BaseException | None]]


class Writer:
    """The writer thread of one SQL backend. ``start``, then ``run`` jobs; ``stop`` at the end."""

    def __init__(
        self,
        engine: Engine,
        apply_group: ApplyGroup,
        *,
        where: str,
        timeout: float,
        ping_interval: float | None = None,
    ) -> None:
        self.engine = engine
        self.apply_group = apply_group
        #: the database, as messages name it (no password)
        self.where = where
        #: longest a write waits for its commit, and longest a transaction may take before the
        #: writer counts as stalled
        self.timeout = timeout
        #: how often an idle writer checks its connection (None: never)
        self.ping_interval = ping_interval
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="sql-writer", daemon=True)
        self._down: str | None = None  # why the database cannot be reached, while it cannot
        self._down_since = 0.0
        self._busy_since: float | None = None  # when the running transaction began

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the queued jobs (or fail them, during an outage) and end the thread.

        Blocks at most :attr:`timeout` (a database that stopped answering would
        hold the thread for ever); a job still running then was not
        acknowledged, and the daemon thread ends with the process.
        """
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(self.timeout)
            if self._thread.is_alive():
                log.warning("the SQL writer did not finish within %gs; leaving it behind", self.timeout)

    def is_alive(self) -> bool:
        """Whether the writer thread runs (from :meth:`start` until :meth:`stop` returned)."""
        return self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Jobs queued and not yet taken into a transaction (approximate while the thread runs)."""
        return self._jobs.qsize()

    def unavailable(self) -> str | None:
        """Why writes cannot be taken now (one line), or None when they can."""
        if not self._thread.is_alive():
            return "the SQL backend is not running"
        if self._down is not None:
            return self._down
        since = self._busy_since
        if since is not None and time.monotonic() - since > self.timeout:
            return (
                f"{self.where} has not finished a write transaction for {time.monotonic() - since:.0f}s; "
                "writes are refused until it does"
            )
        return None

    def submit(self, job: Job) -> concurrent.futures.Future[None]:
        """Queue ``job``; raises StorageUnavailable at once when the database cannot take it."""
        reason = self.unavailable()
        if reason is not None:
            raise StorageUnavailable(reason)
        self._jobs.put(job)
        return job.future

    async def run(self, job: Job, timeout: float | None = None) -> None:
        """Submit ``job`` and wait until it committed, at most ``timeout`` seconds (default: the
        writer's); then StorageUnavailable. A job still queued then is left out."""
        wait = self.timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.submit(job)), wait)
        except TimeoutError:
            raise StorageUnavailable(
                f"{self.where} did not commit the write within {wait:g}s (it may still be stored; "
                "a retry is harmless); raise ?write_timeout= in the storage URL to wait longer"
            ) from None

    # -- the thread ----------------------------------------------------------

    def _loop(self) -> None:
        conn: Connection | None = None
        pause = RECONNECT_FIRST
        retry_at = 0.0
        try:
            while True:
                if conn is None and time.monotonic() >= retry_at:
                    conn = self._connect()
                    if conn is None:
                        retry_at = time.monotonic() + pause
                        pause = min(2 * pause, RECONNECT_MAX)
                    else:
                        pause = RECONNECT_FIRST
                if conn is None:
                    timeout: float | None = max(retry_at - time.monotonic(), 0.0)
                else:
                    timeout = self.ping_interval
                try:
                    job = self._jobs.get(timeout=timeout)
                except queue.Empty:
                    if conn is not None:
                        conn = self._check(conn)
                    continue
                if job is None:
                    return
                group = self._take_group(job)
                if not group:
                    continue
                if conn is None:  # queued just before the outage was noticed: answer at once
                    _fail(group, StorageUnavailable(self._down or "the database is unreachable"))
                    continue
                try:
                    conn = self._run_group(conn, group)
                except Exception:  # a bug: answer the group and go on, rather than stop all writes
                    log.exception("the SQL writer failed; its connection is replaced")
                    _fail(group, StorageUnavailable("the SQL writer failed; the server log has the details"))
                    if conn is not None:
                        _close(conn)
                    conn = None
        finally:
            if conn is not None:
                _close(conn)
            self._drain()

    def _take_group(self, first: Job) -> list[Job]:
        """``first`` and the jobs queued behind it, at most MAX_GROUP; those still wanted."""
        group = [first]
        while len(group) < MAX_GROUP:
            try:
                more = self._jobs.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._jobs.put(None)  # finish this group, then stop
                break
            group.append(more)
        # A job whose caller gave up while it waited (its future cancelled) is left out; the others
        # can no longer be cancelled, so each is answered once it committed or failed.
        return [job for job in group if job.future.set_running_or_notify_cancel()]

    def _run_group(self, conn: Connection, group: list[Job]) -> Connection | None:
        """Apply a group in one transaction; return the connection to use next (None: down)."""
        hints = [list(job.ids) for job in group]
        self._busy_since = time.monotonic()
        try:
            for attempt in range(1, GROUP_ATTEMPTS + 1):
                try:
                    outcomes = self.apply_group(conn, group)
                except Exception as exc:
                    lost = _lost_connection(exc)
                    _close(conn)
                    fresh = self._connect()
                    retry = attempt < GROUP_ATTEMPTS and fresh is not None
                    retry = retry and (lost or _sqlstate(exc) in _RETRIED_STATES)
                    if not retry:
                        if fresh is None:
                            error = StorageUnavailable(self._down or "the database is unreachable")
                        else:
                            log.error("write transaction failed: %s", exc)
                            error = StorageUnavailable(f"the database failed the write: {first_line(exc)}")
                        _fail(group, error)
                        return fresh
                    why = "lost its connection" if lost else "was aborted"
                    log.warning("write transaction %s (%s); running it again", why, first_line(exc))
                    for job, hint in zip(group, hints, strict=True):  # ids made by the failed
                        job.ids = list(hint)  # transaction went with it
                    assert fresh is not None
                    conn = fresh
                    continue
                for job, outcome in zip(group, outcomes, strict=True):
                    if outcome is None:
                        job.future.set_result(None)
                    else:
                        job.future.set_exception(outcome)
                return conn
            raise AssertionError("unreachable: the last attempt returns")
        finally:
            self._busy_since = None

    def _connect(self) -> Connection | None:
        """A new connection, or None (and the outage recorded) when the database does not answer."""
        try:
            conn = self.engine.connect()
        except Exception as exc:
            reason = f"{self.where} is unreachable ({first_line(exc)}); writes are refused until it answers"
            if self._down is None:
                self._down_since = time.monotonic()
                log.error("%s; connecting again every %gs at most", reason, RECONNECT_MAX)
            self._down = reason
            return None
        if self._down is not None:
            log.warning(
                "%s answers again after %.1fs; taking writes", self.where, time.monotonic() - self._down_since
            )
            self._down = None
        return conn

    def _check(self, conn: Connection) -> Connection | None:
        """An idle connection that still works, else a new one (or None: down).

        A check that hangs counts as a stalled transaction, as a write would.
        """
        self._busy_since = time.monotonic()
        try:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
            return conn
        except Exception as exc:
            log.warning("the writer's connection to %s failed a check: %s", self.where, first_line(exc))
            _close(conn)
            return self._connect()
        finally:
            self._busy_since = None

    def _drain(self) -> None:
        """Fail whatever is still queued when the thread ends (writes after ``stop``)."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(StorageUnavailable("the SQL backend is not running"))


def _fail(group: list[Job], error: BaseException) -> None:
    for job in group:
        if not job.future.done():
            job.future.set_exception(error)


def _close(conn: Connection) -> None:
    """Close a connection that may be broken; never raises."""
    try:
        conn.close()
    except Exception:
        log.debug("closing a failed connection", exc_info=True)


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (PostgreSQL), else None."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _lost_connection(exc: BaseException) -> bool:
    """True when ``exc`` means the connection is gone (the server went away), not a failed statement."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc) or ""
    # Class 08: connection exception; 57P01-03: the server is shutting down or starting up.
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


def first_line(exc: BaseException) -> str:
    """The first line of a database error's message (drivers add hints and context below)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Errors that mean the database cannot be used now, as opposed to a statement that is wrong.
_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


@contextlib.contextmanager
def database_unavailable(where: str) -> Iterator[None]:
    """Turn "the database cannot be reached or used now" into StorageUnavailable (503)."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StorageUnavailable(f"{where} is unavailable: {first_line(exc)}") from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailable(f"{where} is unavailable: {first_line(exc)}") from None
        raise
