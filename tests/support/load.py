"""Sustained remote-write load in which every sample can be traced to its request.

A ``WritePlan`` fixes every sample of every request in advance: the timestamp
encodes (writer, request number, position), so no two requests share a sample
and a stored sample names the request it came from; the value is a pure
function of series and timestamp with mixed bits (stale-marker NaNs and -0.0
included), so a reader can check any sample it sees without shared state.

``Writer`` threads send the plan's requests over keep-alive connections and
log each outcome; ``Reader`` threads query while they do. ``check_readback``
compares what a remote read returned with those logs::

    writers = [Writer(plan, w, adapter.address, until) for w in range(plan.writers)]
    ...  # start, join
    problems = check_readback(plan, writers, read_all(adapter.address, plan))
"""

from __future__ import annotations

import enum
import http.client
import itertools
import random
import struct
import threading
import time
import traceback
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from remote_storage.matchers import Matcher
from remote_storage.storage import Labels, TimeSeries, float_bits

from . import wire

__all__ = [
    "HttpClient",
    "LoadStopped",
    "Outcome",
    "Reader",
    "WritePlan",
    "Writer",
    "check_readback",
    "check_well_formed",
    "ensure_writing",
    "failures",
    "limit",
    "read_all",
    "summarize",
]

BASE_MS = 1_700_000_000_000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
REQUEST_TIMEOUT = 30.0
MAX_REQUESTS = 100_000
PROBLEM_LIMIT = 20


@dataclass(frozen=True)
class WritePlan:
    """Which samples writer ``w``'s request number ``seq`` carries.

    Each writer writes ``own_series`` series of its own and the
    ``shared_series`` that every writer writes, ``samples_per_series``
    samples per series per request. Writers' timestamps interleave and never
    collide: ``BASE_MS + (seq * samples_per_series + i) * writers + w``.
    """

    metric: str
    writers: int
    own_series: int = 2
    shared_series: int = 2
    samples_per_series: int = 4

    def series_names(self, writer: int) -> list[str]:
        shared = [f"shared-{k}" for k in range(self.shared_series)]
        return shared + [f"w{writer}-{k}" for k in range(self.own_series)]

    def labels(self, name: str) -> Labels:
        return Labels.from_mapping({"__name__": self.metric, "series": name})

    def timestamp(self, writer: int, seq: int, index: int) -> int:
        return BASE_MS + (seq * self.samples_per_series + index) * self.writers + writer

    def locate(self, timestamp: int) -> tuple[int, int, int]:
        """(writer, request number, index) of the request that carries ``timestamp``."""
        slot, writer = divmod(timestamp - BASE_MS, self.writers)
        seq, index = divmod(slot, self.samples_per_series)
        return writer, seq, index

    def value(self, name: str, timestamp: int) -> float:
        digest = zlib.crc32(f"{name}@{timestamp}".encode())
        if digest % 16 == 0:
            return STALE_NAN
        if digest % 16 == 1:
            return -0.0
        return (digest - (1 << 31)) / 7.0

    def request(self, writer: int, seq: int) -> list[TimeSeries]:
        timestamps = [self.timestamp(writer, seq, i) for i in range(self.samples_per_series)]
        return [
            TimeSeries(self.labels(name), timestamps, [self.value(name, ts) for ts in timestamps])
            for name in self.series_names(writer)
        ]

    def sample_keys(self, writer: int, seq: int) -> list[tuple[str, int]]:
        return [
            (name, self.timestamp(writer, seq, i))
            for name in self.series_names(writer)
            for i in range(self.samples_per_series)
        ]

    def query(self, series_pattern: str = ".*") -> tuple[int, int, tuple[Matcher, ...]]:
        """A remote-read query for the plan's series matching ``series_pattern``, all time."""
        matchers = (
            Matcher.parse("__name__", "=", self.metric),
            Matcher.parse("series", "=~", series_pattern),
        )
        return (BASE_MS, BASE_MS + 10**12, matchers)


class HttpClient:
    """One keep-alive HTTP/1.1 connection to ``host:port``; reconnects after an error."""

    def __init__(self, address: str, timeout: float = REQUEST_TIMEOUT) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port, self._timeout = host, int(port), timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Status and body; raises ``OSError``/``HTTPException`` when no response came."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            self._conn.request("POST", path, body=body, headers=headers)
            response = self._conn.getresponse()
            return response.status, response.read()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_all(address: str, plan: WritePlan, series_pattern: str = ".*") -> list[TimeSeries]:
    """Every series of the plan (matching ``series_pattern``) as one remote read returns them."""
    with HttpClient(address) as client:
        status, body = client.post(
            "/api/v1/read", wire.read_body(plan.query(series_pattern)), wire.READ_HEADERS
        )
    if status != 200:
        raise AssertionError(f"remote read answered HTTP {status}: {body[:300]!r}")
    (result,) = wire.read_results(body)
    return result.series


class Outcome(enum.Enum):
    IN_FLIGHT = "in flight"
    ACKED = "acknowledged"
    REJECTED = "rejected"  # a response other than 2xx
    NO_RESPONSE = "no response"  # the connection failed before a response came


@dataclass
class Sent:
    """One request a writer sent and what became of it."""

    seq: int
    outcome: Outcome = Outcome.IN_FLIGHT
    detail: str = ""
    finished: float = 0.0


class Writer(threading.Thread):
    """Sends ``plan.request(writer, 0), (writer, 1), ...`` until ``until`` or ``stop``.

    Stops at the first request that is not acknowledged (the server is gone,
    or broken: either way later requests tell nothing new). A bug in the
    thread itself is kept in ``crashed`` rather than lost.
    """

    def __init__(
        self, plan: WritePlan, writer: int, address: str, until: float, stop: threading.Event
    ) -> None:
        super().__init__(name=f"writer-{writer}", daemon=True)
        self.plan = plan
        self.writer = writer
        self.address = address
        self.until = until
        self.stop_event = stop
        self.sent: list[Sent] = []
        self.crashed = ""

    @property
    def in_flight(self) -> bool:
        sent = self.sent
        return bool(sent) and sent[-1].outcome is Outcome.IN_FLIGHT

    def count(self, outcome: Outcome) -> int:
        return sum(record.outcome is outcome for record in self.sent)

    def run(self) -> None:
        try:
            with HttpClient(self.address) as client:
                for seq in range(MAX_REQUESTS):
                    if self.stop_event.is_set() or time.monotonic() >= self.until:
                        return
                    if not self._send(client, seq):
                        return
        except Exception:
            self.crashed = traceback.format_exc()

    def _send(self, client: HttpClient, seq: int) -> bool:
        body = wire.v1_body(self.plan.request(self.writer, seq))
        record = Sent(seq)
        self.sent.append(record)
        try:
            status, text = client.post("/api/v1/write", body, wire.V1_HEADERS)
        except (OSError, http.client.HTTPException) as exc:
            record.outcome, record.detail = Outcome.NO_RESPONSE, f"{type(exc).__name__}: {exc}"
        else:
            ok = 200 <= status < 300
            record.outcome = Outcome.ACKED if ok else Outcome.REJECTED
            record.detail = "" if ok else f"HTTP {status}: {text[:300]!r}"
        record.finished = time.monotonic()
        return record.outcome is Outcome.ACKED


class Reader(threading.Thread):
    """Runs remote reads until ``until`` or ``stop``; each must answer 200 with well-formed results.

    Every read asks for the shared series and one writer's own series (two
    queries in one request). The first problem ends the reader; it is kept
    in ``problems``.
    """

    def __init__(
        self, plan: WritePlan, reader: int, address: str, until: float, stop: threading.Event
    ) -> None:
        super().__init__(name=f"reader-{reader}", daemon=True)
        self.plan = plan
        self.reader = reader
        self.address = address
        self.until = until
        self.stop_event = stop
        self.reads = 0
        self.problems: list[str] = []

    def run(self) -> None:
        chooser = random.Random(self.reader)
        try:
            with HttpClient(self.address) as client:
                for _ in range(MAX_REQUESTS):
                    if self.stop_event.is_set() or time.monotonic() >= self.until:
                        return
                    writer = chooser.randrange(self.plan.writers)
                    queries = (self.plan.query("shared-.*"), self.plan.query(f"w{writer}-.*"))
                    status, body = client.post("/api/v1/read", wire.read_body(*queries), wire.READ_HEADERS)
                    if status != 200:
                        self.problems.append(f"read {self.reads}: HTTP {status}: {body[:300]!r}")
                        return
                    results = wire.read_results(body)
                    if len(results) != len(queries):
                        self.problems.append(f"read {self.reads}: {len(results)} results for 2 queries")
                    for result in results:
                        self.problems.extend(
                            f"read {self.reads}: {p}" for p in check_well_formed(self.plan, result.series)
                        )
                    self.reads += 1
                    if self.problems:
                        return
        except Exception:
            self.problems.append(f"read {self.reads} raised:\n{traceback.format_exc()}")


def check_well_formed(plan: WritePlan, series: Sequence[TimeSeries]) -> list[str]:
    """Problems with one query result: order, duplicates, samples the plan never made."""
    problems: list[str] = []
    for before, after in itertools.pairwise(series):
        if not before.labels < after.labels:
            problems.append(f"series out of order or repeated: {before.labels} then {after.labels}")
    for item in series:
        name = item.labels.get("series")
        if item.labels != plan.labels(name):
            problems.append(f"unexpected series {item.labels}")
            continue
        timestamps = list(item.timestamps)
        for i, (earlier, later) in enumerate(itertools.pairwise(timestamps)):
            if earlier >= later:
                problems.append(
                    f"{item.labels}: timestamps not strictly increasing at {i}: {earlier}, {later}"
                )
                break
        for ts, value in zip(timestamps, item.values, strict=True):
            got, want = float_bits(value), float_bits(plan.value(name, ts))
            if got != want:
                problems.append(f"{item.labels} @{ts}: value bits {got:#018x}, written {want:#018x}")
                break
    return problems


def check_readback(
    plan: WritePlan,
    writers: Sequence[Writer],
    series: Sequence[TimeSeries],
    *,
    all_or_nothing: bool = True,
) -> list[str]:
    """Problems in a read-back of everything ``writers`` sent.

    Every sample of an acknowledged request must be there exactly once with
    its bits; nothing of a rejected request and nothing never sent may be.
    With ``all_or_nothing``, a request without a response (in flight when the
    server died) must be stored whole or not at all.
    """
    problems = check_well_formed(plan, series)
    stored = {(item.labels.get("series"), ts) for item in series for ts in item.timestamps}
    sent_counts = {w.writer: len(w.sent) for w in writers}
    for name, ts in sorted(stored):
        writer, seq, _ = plan.locate(ts)
        if seq >= sent_counts.get(writer, 0):
            problems.append(f"sample {name}@{ts} belongs to request {seq} of writer {writer}, never sent")
    for w in writers:
        for record in w.sent:
            keys = plan.sample_keys(w.writer, record.seq)
            present = sum(key in stored for key in keys)
            where = f"writer {w.writer} request {record.seq} ({record.outcome.value})"
            if record.outcome is Outcome.ACKED and present != len(keys):
                missing = [key for key in keys if key not in stored]
                problems.append(f"{where}: {len(missing)} of {len(keys)} samples missing, first {missing[0]}")
            elif record.outcome is Outcome.REJECTED and present:
                problems.append(f"{where}: {present} of {len(keys)} samples stored")
            elif all_or_nothing and 0 < present < len(keys):
                problems.append(f"{where}: partly stored, {present} of {len(keys)} samples")
    return problems


class LoadStopped(RuntimeError):
    """Every writer stopped before the test was done with the load; says why.

    Not an ``AssertionError``, so a bounded poll for progress fails at once.
    """


def failures(writers: Sequence[Writer], *, killed_at: float | None = None) -> list[str]:
    """One line per request that was not acknowledged, and per crashed writer.

    With ``killed_at`` (a ``time.monotonic()`` instant) lost connections from
    then on are expected and left out: the test killed the server.
    """
    lines = [w.crashed for w in writers if w.crashed]
    for w in writers:
        for r in w.sent:
            expected = r.outcome is Outcome.NO_RESPONSE and killed_at is not None and r.finished >= killed_at
            if r.outcome not in (Outcome.ACKED, Outcome.IN_FLIGHT) and not expected:
                lines.append(f"writer {w.writer} request {r.seq}: {r.outcome.value}: {r.detail}")
    return lines


def ensure_writing(writers: Sequence[Writer]) -> None:
    """Raise ``LoadStopped`` with the first failures once no writer is running any more."""
    if not any(w.is_alive() for w in writers):
        raise LoadStopped(f"all writers stopped ({summarize(writers)}):\n" + limit(failures(writers)))


def summarize(writers: Sequence[Writer]) -> str:
    """Outcome counts over all writers, for messages."""
    counts = {outcome: sum(w.count(outcome) for w in writers) for outcome in Outcome}
    return ", ".join(f"{n} {outcome.value}" for outcome, n in counts.items() if n)


def limit(problems: Sequence[str], count: int = PROBLEM_LIMIT) -> str:
    """The first ``count`` problems, one a line, and how many more there were."""
    shown = list(problems[:count])
    if len(problems) > count:
        shown.append(f"... and {len(problems) - count} more")
    return "\n".join(shown)
