"""The conformance checks: write uniquely labelled series, read them back, send malformed input.

:func:`run_checks` runs them in order against an :class:`~.client.Endpoint`
and returns one :class:`~.report.Result` per check:

1. ``write 1.0`` / ``write 2.0``: the series of :mod:`.data` in one request
   each (2.0 also reports how many samples it wrote, in the
   ``X-Prometheus-Remote-Write-Samples-Written`` header). An endpoint that
   answers a 2.0 body with 415, or with a 2xx that stores nothing and lacks
   that header (a 1.0 receiver, such as Prometheus 2.42, reads the 2.0 body
   as an empty 1.0 request), does not support 2.0: its 2.0 rows are
   ``unsupported``.
2. For each response type (``SAMPLES``, ``STREAMED_XOR_CHUNKS``): the
   values written by each version come back bit for bit (``-0``, NaN
   payloads, the stale marker), labels sorted; each matcher kind (``=``,
   ``!=``, ``=~``, ``!~``, ``=""`` for a missing label, and regex anchoring)
   selects exactly the expected series; a query's time range is inclusive;
   several queries in one request are answered in request order. An
   endpoint that answers a streamed-only request with ``SAMPLES`` does not
   stream: those rows are ``unsupported``.
3. Malformed input: protobuf garbage and broken snappy are 400 on write and
   read (a 5xx would make senders retry forever); duplicate label names are
   400. Informational, because receivers differ: an unknown
   ``Content-Type`` (415 in the 2.0 specification), unsorted labels
   (accepted and stored sorted here and by Prometheus), a second value for
   the same timestamp (400 here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from remote_storage import __version__, chunks
from remote_storage.check.client import Answer, Endpoint, Unreachable
from remote_storage.check.data import (
    KINDS,
    METRIC_PREFIX,
    RUN_LABEL,
    STEP_MS,
    Found,
    Written,
    as_series,
    describe_bits,
    labels,
    sorted_found,
)
from remote_storage.check.report import Level, Outcome, Result
from remote_storage.matchers import Matcher, MatchType
from remote_storage.protocol import snappy
from remote_storage.protocol.negotiation import ResponseType, WriteVersion
from remote_storage.protocol.pb import types_pb2
from remote_storage.protocol.read import decode_read_response, encode_read_request
from remote_storage.protocol.streamed import decode_frames
from remote_storage.protocol.wire import records
from remote_storage.protocol.write import encode_v1, encode_v2
from remote_storage.storage import Labels, Query, ReadRequest, TimeSeries, float_bits

__all__ = ["PROTOCOLS", "run_checks"]

PROTOCOLS = ("1.0", "2.0")
SAMPLES_WRITTEN = "x-prometheus-remote-write-samples-written"
_USER_AGENT = f"remote-storage-check/{__version__}"
_WRITE_HEADERS = {
    "1.0": {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
        "User-Agent": _USER_AGENT,
    },
    "2.0": {
        "Content-Type": f"application/x-protobuf;proto={WriteVersion.V2.value}",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "2.0.0",
        "User-Agent": _USER_AGENT,
    },
}
_READ_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Read-Version": "0.1.0",
    "User-Agent": _USER_AGENT,
}
_RESPONSE_NAMES = {ResponseType.SAMPLES: "samples", ResponseType.STREAMED_XOR_CHUNKS: "streamed"}
_MAX_RESPONSE_BYTES = 256 * 2**20
_SHOWN = 3  # label sets named in a detail at most


class Failed(Exception):
    """The check failed; the message is the reason."""


class Unsupported(Exception):
    """The endpoint does not implement what the check needs; the message says what it did instead."""


class NotStreamed(Unsupported):
    """The endpoint answered a streamed-only read request with a ``SAMPLES`` response."""


class Skipped(Exception):
    """A step the check depends on failed or is unsupported."""


@dataclass(frozen=True)
class _MatcherCase:
    name: str
    matcher: Matcher
    kinds: tuple[str, ...]  # the kinds of the series it selects ("" = the series without the label)


_MATCHER_CASES = (
    _MatcherCase("matcher =", Matcher(MatchType.EQ, "kind", "beta"), ("beta",)),
    _MatcherCase("matcher !=", Matcher(MatchType.NEQ, "kind", "beta"), ("alpha", "gamma", "")),
    _MatcherCase("matcher =~", Matcher(MatchType.RE, "kind", "alpha|gam.*"), ("alpha", "gamma")),
    _MatcherCase("matcher !~", Matcher(MatchType.NRE, "kind", "b.*"), ("alpha", "gamma", "")),
    _MatcherCase('matcher ="" (label missing)', Matcher(MatchType.EQ, "kind", ""), ("",)),
    _MatcherCase("matcher =~ anchored", Matcher(MatchType.RE, "kind", "a.*"), ("alpha",)),
)


def run_checks(
    endpoint: Endpoint,
    run_id: str,
    now_ms: int,
    protocols: Sequence[str] = PROTOCOLS,
    response_types: Sequence[ResponseType] = tuple(ResponseType),
) -> list[Result]:
    """Run every check against ``endpoint``; one result per check, in the order they ran."""
    return _Run(endpoint, run_id, now_ms, protocols, response_types).results()


class _Run:
    def __init__(
        self,
        endpoint: Endpoint,
        run_id: str,
        now_ms: int,
        protocols: Sequence[str],
        response_types: Sequence[ResponseType],
    ) -> None:
        self.endpoint = endpoint
        self.run_id = run_id
        start_ms = (now_ms - 5 * 60_000) // 1000 * 1000
        self.written = {p: Written(run_id, p, start_ms) for p in protocols}
        self.response_types = response_types
        self.start_ms = start_ms
        self.rows: list[Result] = []
        self.stored: dict[str, Result] = {}  # protocol -> the result of its write
        self.unreachable: Unreachable | None = None

    def row(self, name: str, level: Level, check: Callable[[], str]) -> Result:
        if self.unreachable is not None:  # one timeout is enough: the other rows would wait as long
            result = Result(name, level, Outcome.SKIPPED, f"not run: {self.unreachable}")
            self.rows.append(result)
            return result
        try:
            result = Result(name, level, Outcome.PASS, check())
        except Failed as exc:
            outcome = Outcome.FAIL if level is Level.MUST else Outcome.DIFFERS
            result = Result(name, level, outcome, str(exc))
        except Unsupported as exc:
            result = Result(name, level, Outcome.UNSUPPORTED, str(exc))
        except Skipped as exc:
            result = Result(name, level, Outcome.SKIPPED, str(exc))
        except Unreachable as exc:
            self.unreachable = exc
            result = Result(name, level, Outcome.FAIL, str(exc))
        self.rows.append(result)
        return result

    def results(self) -> list[Result]:
        for protocol in self.written:
            result = self.row(f"write {protocol}", Level.MUST, partial(self.write_all, protocol))
            self.stored[protocol] = result
        for response_type in self.response_types:
            self.read_checks(response_type)
        self.malformed_checks()
        return self.rows

    # -- writing

    def post_write(
        self, protocol: str, series: Sequence[TimeSeries], content_type: str | None = None
    ) -> Answer:
        encode = encode_v1 if protocol == "1.0" else encode_v2
        headers = dict(_WRITE_HEADERS[protocol])
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.endpoint.post(self.endpoint.write_url, snappy.compress(encode(series)), headers)

    def write_all(self, protocol: str) -> str:
        written = self.written[protocol]
        found = written.all()
        answer = self.post_write(protocol, as_series(found))
        samples = sum(len(f.timestamps) for f in found)
        if protocol == "2.0" and answer.status == 415:
            raise Unsupported(f"answered {answer.describe()}: no remote write 2.0")
        if not answer.ok:
            raise Failed(f"answered {answer.describe()}")
        detail = f"{answer.status}, {len(found)} series, {samples} samples"
        if protocol == "1.0":
            return detail
        count = answer.headers.get(SAMPLES_WRITTEN)
        if count is None:
            stored = self.read_once([self.query_for(written.values)], ResponseType.SAMPLES)[0]
            if not stored:
                raise Unsupported(
                    f"answered {answer.status} without {SAMPLES_WRITTEN} and stored nothing: "
                    "a 1.0 receiver that read the 2.0 body as an empty 1.0 request"
                )
            raise Failed(f"answered {answer.status} and stored the series, but without {SAMPLES_WRITTEN}")
        if count.strip() != str(samples):
            raise Failed(f"{SAMPLES_WRITTEN}: {count}, but {samples} samples were sent")
        return f"{detail}, {SAMPLES_WRITTEN}: {count}"

    # -- reading

    def query_for(self, found: Found, start_ms: int | None = None, end_ms: int | None = None) -> Query:
        """The query selecting exactly the series of ``found``, over its samples or the range given."""
        matchers = tuple(Matcher(MatchType.EQ, name, value) for name, value in found.labels)
        first = found.timestamps[0] if start_ms is None else start_ms
        last = found.timestamps[-1] if end_ms is None else end_ms
        return Query(first, last, matchers)

    def read_once(self, queries: Sequence[Query], response_type: ResponseType) -> list[list[Found]]:
        """POST one read request; the series of each query's result, in the order received."""
        body = snappy.compress(encode_read_request(ReadRequest(tuple(queries)), [response_type]))
        answer = self.endpoint.post(self.endpoint.read_url, body, _READ_HEADERS)
        if not answer.ok:
            raise Failed(f"read answered {answer.describe()}")
        media_type = answer.content_type.split(";")[0].strip().lower()
        streamed = media_type == "application/x-streamed-protobuf"
        if streamed and response_type is ResponseType.SAMPLES:
            raise Failed("asked for SAMPLES only, answered with a streamed response")
        if not streamed and media_type != "application/x-protobuf":
            raise Failed(f"read answered with Content-Type {answer.content_type!r}")
        if not streamed and response_type is ResponseType.STREAMED_XOR_CHUNKS:
            raise NotStreamed("asked for STREAMED_XOR_CHUNKS only, answered with a SAMPLES response")
        results = _streamed_results(answer.body, len(queries)) if streamed else _samples_results(answer.body)
        if len(results) != len(queries):
            raise Failed(f"{len(queries)} queries, {len(results)} results")
        if not streamed:
            return results
        # Chunks may reach outside the query's range; readers drop what lies outside (and
        # so a series left without samples), and so do we.
        trimmed = [[f.within(q.start_ms, q.end_ms) for f in r] for q, r in zip(queries, results, strict=True)]
        return [[f for f in result if f.timestamps] for result in trimmed]

    def source(self) -> Written:
        """The data the read checks query: that of the first version whose write worked."""
        for protocol, written in self.written.items():
            if self.stored[protocol].outcome is Outcome.PASS:
                return written
        raise Skipped("no write worked")

    def read_checks(self, response_type: ResponseType) -> None:
        prefix = f"read {_RESPONSE_NAMES[response_type]}"
        unsupported: list[str] = []  # why this response type is not supported, for the rows after the first

        def guarded(check: Callable[[], str]) -> Callable[[], str]:
            def run() -> str:
                if unsupported:
                    raise Unsupported(unsupported[0])
                try:
                    return check()
                except NotStreamed as exc:
                    unsupported.append(str(exc))
                    raise

            return run

        for protocol, written in self.written.items():
            self.row(
                f"{prefix}: values {protocol} bit-exact",
                Level.MUST,
                guarded(partial(self.check_values, protocol, written, response_type)),
            )
            self.row(
                f"{prefix}: -0 {protocol} keeps its sign",
                Level.INFO,
                guarded(partial(self.check_negative_zero, protocol, written, response_type)),
            )
        for case in _MATCHER_CASES:
            check = guarded(partial(self.check_matcher, case, response_type))
            self.row(f"{prefix}: {case.name}", Level.MUST, check)
        check = guarded(partial(self.check_range, response_type))
        self.row(f"{prefix}: time range inclusive", Level.MUST, check)
        check = guarded(partial(self.check_order, response_type))
        self.row(f"{prefix}: queries in request order", Level.MUST, check)

    def check_values(self, protocol: str, written: Written, response_type: ResponseType) -> str:
        self.require(protocol)
        expected = written.values
        (result,) = self.read_once([self.query_for(expected)], response_type)
        _expect_series(result, [expected])
        return f"{len(expected.bits)} values, the stale marker included"

    def require(self, protocol: str) -> None:
        """Raise unless the write of ``protocol`` worked (unsupported if it was)."""
        write = self.stored[protocol]
        if write.outcome is Outcome.UNSUPPORTED:
            raise Unsupported(f"remote write {protocol} is not supported")
        if write.outcome is not Outcome.PASS:
            raise Skipped(f"write {protocol} {write.outcome.value}")

    def check_negative_zero(self, protocol: str, written: Written, response_type: ResponseType) -> str:
        self.require(protocol)
        expected = written.negative_zero
        (result,) = self.read_once([self.query_for(expected)], response_type)
        _expect_series(result, [expected])
        return "-0 read back as -0"

    def check_matcher(self, case: _MatcherCase, response_type: ResponseType) -> str:
        written = self.source()
        base = (
            Matcher(MatchType.EQ, "__name__", METRIC_PREFIX + "matchers"),
            Matcher(MatchType.EQ, RUN_LABEL, self.run_id),
            Matcher(MatchType.EQ, "protocol", written.protocol),
        )
        query = Query(written.start_ms, written.end_ms, (*base, case.matcher))
        (result,) = self.read_once([query], response_type)
        _expect_series(result, [written.kind(k) for k in case.kinds])
        m = case.matcher
        return f'{m.name}{m.type.symbol}"{m.value}": {len(case.kinds)} of {len(KINDS) + 1} series'

    def check_range(self, response_type: ResponseType) -> str:
        values = self.source().values
        first, last = values.timestamps[1], values.timestamps[3]
        (result,) = self.read_once([self.query_for(values, first, last)], response_type)
        _expect_series(result, [values.within(first, last)])
        return f"[{first}, {last}]: 3 samples, both ends included"

    def check_order(self, response_type: ResponseType) -> str:
        written = self.source()
        gamma, alpha, values = written.kind("gamma"), written.kind("alpha"), written.values
        queries = [
            self.query_for(gamma),
            self.query_for(values, values.timestamps[0] - 10 * STEP_MS, values.timestamps[0] - STEP_MS),
            self.query_for(alpha),
            self.query_for(values),
        ]
        expected = [[gamma], [], [alpha], [values]]
        results = self.read_once(queries, response_type)
        for index, (result, want) in enumerate(zip(results, expected, strict=True)):
            try:
                _expect_series(result, want)
            except Failed as exc:
                raise Failed(f"query {index} of {len(queries)}: {exc}") from None
        return f"{len(queries)} queries, one of them empty, answered in order"

    # -- malformed input

    def malformed_checks(self) -> None:
        v1 = _WRITE_HEADERS["1.0"]
        write_url = self.endpoint.write_url
        self.row(
            "write: protobuf garbage -> 400",
            Level.MUST,
            lambda: self.expect_status(write_url, snappy.compress(_GARBAGE), v1, 400),
        )
        self.row(
            "write: broken snappy -> 400",
            Level.MUST,
            lambda: self.expect_status(write_url, _NOT_SNAPPY, v1, 400),
        )
        self.row("write: duplicate label name -> 400", Level.INFO, self.check_duplicate_label)
        self.row("write: unknown Content-Type -> 415", Level.INFO, self.check_content_type)
        self.row("write: unsorted labels accepted, stored sorted", Level.INFO, self.check_unsorted)
        self.row("write: second value for a timestamp -> 400", Level.INFO, self.check_conflict)
        read_url = self.endpoint.read_url
        self.row(
            "read: protobuf garbage -> 400",
            Level.MUST,
            lambda: self.expect_status(read_url, snappy.compress(_GARBAGE), _READ_HEADERS, 400),
        )
        self.row(
            "read: broken snappy -> 400",
            Level.MUST,
            lambda: self.expect_status(read_url, _NOT_SNAPPY, _READ_HEADERS, 400),
        )

    def expect_status(self, url: str, body: bytes, headers: dict[str, str], status: int) -> str:
        answer = self.endpoint.post(url, body, headers)
        if answer.status != status:
            retry = " (a 5xx makes senders retry forever)" if answer.status >= 500 else ""
            raise Failed(f"answered {answer.describe()}{retry}, expected {status}")
        return answer.describe()

    def single(self, name: str, extra: dict[str, str] | None = None) -> Found:
        protocol = "1.0"
        return Found(labels(name, self.run_id, protocol, extra or {}), (self.start_ms,), (float_bits(42.0),))

    def check_duplicate_label(self) -> str:
        good = self.single("duplicate_label", {"twice": "a"})
        bad = Found((*good.labels, ("twice", "b")), good.timestamps, good.bits)
        return self.expect_status(
            self.endpoint.write_url, snappy.compress(encode_v1(as_series([bad]))), _WRITE_HEADERS["1.0"], 400
        )

    def check_content_type(self) -> str:
        series = as_series([self.single("content_type")])
        answer = self.post_write("1.0", series, content_type="application/json")
        if answer.status != 415:
            raise Failed(f"answered {answer.describe()} to Content-Type application/json")
        return answer.describe()

    def check_unsorted(self) -> str:
        found = self.single("unsorted", {"a_first": "x", "zz_last": "y"})
        unsorted = Found(tuple(reversed(found.labels)), found.timestamps, found.bits)
        answer = self.post_write("1.0", as_series([unsorted]))
        if not answer.ok:
            raise Failed(f"answered {answer.describe()}")
        (result,) = self.read_once([self.query_for(found)], ResponseType.SAMPLES)
        _expect_series(result, [found])
        return f"{answer.status}; read back with sorted labels"

    def check_conflict(self) -> str:
        first = self.single("conflict")
        second = Found(first.labels, first.timestamps, (float_bits(43.0),))
        answer = self.post_write("1.0", as_series([first]))
        if not answer.ok:
            raise Failed(f"the first value: answered {answer.describe()}")
        answer = self.post_write("1.0", as_series([second]))
        if answer.status != 400:
            raise Failed(f"a second value for the same timestamp: answered {answer.describe()}")
        return answer.describe()


# A series record that claims 4 GiB, then text: no protobuf parser accepts it.
_GARBAGE = records.v1_series_header(0xFFFFFFFF) + b" not a protobuf message"
_NOT_SNAPPY = snappy.compress(b"remote-storage check " * 8)[:-3]  # a valid length, a cut-off block


def _samples_results(body: bytes) -> list[list[Found]]:
    try:
        payload = snappy.decompress(body, _MAX_RESPONSE_BYTES, "the response size limit")
        results = decode_read_response(payload)
    except Exception as exc:  # any decoding error is the endpoint's failure
        raise Failed(f"the SAMPLES response does not decode: {exc}") from None
    return [[Found.of(series) for series in result.series] for result in results]


_Key = tuple[tuple[str, str], ...]


def _streamed_results(body: bytes, queries: int) -> list[list[Found]]:
    """Join the frames of a streamed response into series, per query; frames must come in query order."""
    try:
        messages = decode_frames(body)
    except Exception as exc:
        raise Failed(f"the streamed response does not decode: {exc}") from None
    results: list[dict[_Key, tuple[list[int], list[int]]]] = [{} for _ in range(queries)]
    last_index = 0
    for message in messages:
        index = message.query_index
        if not 0 <= index < queries:
            raise Failed(f"a frame for query {index}, but the request had {queries}")
        if index < last_index:
            raise Failed(f"a frame for query {index} after one for query {last_index}: not in query order")
        last_index = index
        for series in message.chunked_series:
            key = tuple((label.name, label.value) for label in series.labels)
            timestamps, bits = results[index].setdefault(key, ([], []))
            for chunk in series.chunks:
                if chunk.type != types_pb2.Chunk.XOR:
                    raise Failed(f"a chunk of encoding {chunk.type}, not XOR")
                try:
                    ts, values = chunks.decode_chunk(chunk.data)
                except ValueError as exc:
                    raise Failed(f"an XOR chunk of {Labels(key)} does not decode: {exc}") from None
                timestamps.extend(ts)
                bits.extend(map(float_bits, values))
    return [[Found(key, tuple(ts), tuple(bits)) for key, (ts, bits) in result.items()] for result in results]


def _names(found: Sequence[Found]) -> str:
    shown = [str(Labels(sorted(f.labels))) for f in found[:_SHOWN]]
    more = f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    return ", ".join(shown) + more if shown else "none"


def _expect_series(result: Sequence[Found], expected: Sequence[Found]) -> None:
    """Raise :class:`Failed` naming the first difference between a query's result and what was written."""
    by_set = {frozenset(f.labels): f for f in result}
    want = {frozenset(f.labels): f for f in expected}
    missing = [f for key, f in want.items() if key not in by_set]
    extra = [f for key, f in by_set.items() if key not in want]
    if missing or extra or len(result) != len(by_set):
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if extra:
            parts.append(f"unexpected {_names(extra)}")
        if len(result) != len(by_set):
            parts.append("a series answered twice")
        raise Failed("; ".join(parts))
    for wanted in sorted_found(expected):
        got = by_set[frozenset(wanted.labels)]
        if got.labels != tuple(sorted(got.labels)):
            raise Failed(f"labels not sorted by name: {[name for name, _ in got.labels]}")
        if got.timestamps != wanted.timestamps:
            got_ts, want_ts = list(got.timestamps), list(wanted.timestamps)
            raise Failed(f"{Labels(wanted.labels)}: timestamps {got_ts}, expected {want_ts}")
        wrong = [
            f"at {t} {describe_bits(got_bits)}, expected {describe_bits(want_bits)}"
            for t, got_bits, want_bits in zip(wanted.timestamps, got.bits, wanted.bits, strict=True)
            if got_bits != want_bits
        ]
        if wrong:
            more = f"; and {len(wrong) - _SHOWN} more" if len(wrong) > _SHOWN else ""
            raise Failed(f"{Labels(wanted.labels)}: values {'; '.join(wrong[:_SHOWN])}{more}")
