"""The backend contract: :class:`RemoteStorage` and the types a backend sees.

A backend never sees protobuf, snappy or HTTP. It receives one
version-independent :class:`WriteRequest` per remote-write request (remote
write 1.0 and 2.0 decode to the same thing) and one :class:`Query` at a time
for remote read. A custom backend implements two coroutines::

    class MyStorage(RemoteStorage):
        async def write(self, ctx, request):
            ...  # store every series' samples; return once they are durable

        async def process_query(self, ctx, query):
            for series in ...:  # in label order
                yield series

What to implement:

* ``write(ctx, request)`` and ``process_query(ctx, query)``; nothing else.

What is optional (each has a default that works):

* ``start()`` / ``close()``: open and release connections or files.
* ``read(ctx, request)``: answers all queries of a request; the default
  fans them out concurrently over ``process_query``.
* ``metadata(ctx)``: metric metadata for ``GET /api/v1/metadata`` (default: none).
* ``stats()``: figures for ``/metrics`` (default: none).
* ``unavailable()``: why writes cannot succeed right now, for ``/-/ready``.
* ``describe()``: one line for the start-up log, no secrets.
* Faster paths a backend may take or ignore: :class:`SampleBatch` (a write
  as columns), :attr:`TimeSeries.key` (a cheap identity of a label set),
  :class:`EncodedChunk` in query results (XOR chunks passed through),
  :attr:`TimeSeries.label_records`.

Not part of the contract: how the backend runs in several server processes
(a :class:`~remote_storage.deployment.Deployment`, registered with its URL
scheme) and how a URL opens it (:mod:`remote_storage.backends`). Values are
compared by their bits: :func:`float_bits` and :func:`float_from_bits`.

Semantics every backend keeps (the conformance suite in
``remote_storage.testing`` checks them):

* **Durability**: ``write`` returns only when the samples are stored as
  durably as the backend can make them; the server acknowledges (2xx) after
  that and never before.
* **Atomicity**: a write that raises stores nothing of that request.
* **Idempotency**: writing a sample whose (series, timestamp, value bits) is
  already stored is a no-op, so a sender's retry after a lost response is
  harmless. The same timestamp with different value bits raises
  :class:`~remote_storage.errors.SampleConflict` (answered with 400).
* **Bit-exact values**: float64 values come back with the same 64 bits,
  including NaN payloads such as the stale marker.
* **Queries**: ``start_ms <= t <= end_ms`` (both inclusive); a series matches
  when every matcher accepts its value of the label (``""`` when missing);
  series are yielded sorted by label set, samples in timestamp order; series
  without samples in the range are not yielded.
* **Tenancy**: data written with one ``ctx.tenant`` is never returned to another.
* **Concurrency**: the server calls ``write`` and ``process_query``
  concurrently on one object, one coroutine per request; a backend that
  awaits between checking for conflicts and storing needs a lock there.

``docs/backends.md`` walks from a first backend to a production one.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import struct
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial

from remote_storage.matchers import Matcher

__all__ = [
    "DEFAULT_TENANT",
    "Context",
    "EncodedChunk",
    "Exemplar",
    "Histogram",
    "Labels",
    "MetricMetadata",
    "MetricType",
    "Query",
    "QueryResult",
    "ReadHints",
    "ReadRequest",
    "RemoteStorage",
    "ResetHint",
    "SampleBatch",
    "StorageStats",
    "TimeSeries",
    "WriteRequest",
    "float_bits",
    "float_from_bits",
    "join_labels",
    "split_labels",
]

DEFAULT_TENANT = "default"


class Labels(tuple[tuple[str, str], ...]):
    """An immutable label set: ``(name, value)`` pairs sorted by name.

    Hashable and comparable, so it serves as a dict key and sorts series the
    way Prometheus does (by name, then value, pair by pair). The constructor
    trusts its input; :meth:`from_mapping` sorts and drops empty values.

    >>> labels = Labels.from_mapping({"job": "node", "__name__": "up"})
    >>> str(labels), labels.get("job"), labels.metric_name
    ('{__name__="up", job="node"}', 'node', 'up')
    """

    __slots__ = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str]) -> Labels:
        """Sorted label set from a mapping; labels with empty values are dropped."""
        return cls(sorted((str(k), str(v)) for k, v in mapping.items() if v != ""))

    def get(self, name: str, default: str = "") -> str:
        """The value of ``name``, or ``default`` when the label is missing."""
        for label_name, value in self:
            if label_name == name:
                return value
        return default

    @property
    def metric_name(self) -> str:
        return self.get("__name__")

    def as_dict(self) -> dict[str, str]:
        return dict(self)

    def __str__(self) -> str:
        inner = ", ".join(f"{name}={_quote(value)}" for name, value in self)
        return "{" + inner + "}"

    def __repr__(self) -> str:
        return f"Labels({tuple(self)!r})"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# -- joined label bytes ---------------------------------------------------------------

#: What :func:`join_labels` puts between names and values: UTF-8 never holds this byte.
LABEL_SEPARATOR = b"\xff"


def join_labels(labels: Iterable[tuple[str, str]]) -> bytes:
    """A label set as bytes: ``name 0xFF value 0xFF name ...`` in UTF-8 (no labels: ``b""``).

    The storage form of a label set: one bytes object per series that
    compares, hashes and stores cheaply, and that the protocol layer turns
    into wire records without decoding the strings (see
    :attr:`TimeSeries.joined_labels`). :func:`split_labels` is its inverse.

    >>> join_labels([("__name__", "up"), ("job", "node")])
    b'__name__\\xffup\\xffjob\\xffnode'
    """
    return LABEL_SEPARATOR.join(part.encode() for pair in labels for part in pair)


def split_labels(data: bytes, pairs: dict[tuple[bytes, bytes], tuple[str, str]] | None = None) -> Labels:
    """Inverse of :func:`join_labels`.

    ``pairs`` is a cache for decoding many label sets: a ``(name, value)``
    pair met before is shared instead of decoded again. Series share most of
    their pairs (job, cluster, metric name, ...), so 100,000 label sets of 10
    labels take about a tenth of the memory and half the time.
    """
    if not data:
        return Labels()
    parts = data.split(LABEL_SEPARATOR)
    if pairs is None:
        strings = [part.decode() for part in parts]
        return Labels(zip(strings[::2], strings[1::2], strict=True))
    found = []
    for index in range(0, len(parts), 2):
        key = (parts[index], parts[index + 1])
        pair = pairs.get(key)
        if pair is None:
            pair = pairs[key] = (key[0].decode(), key[1].decode())
        found.append(pair)
    return Labels(found)


class MetricType(enum.IntEnum):
    """Metric family types; values as in remote write 1.0's ``MetricMetadata``."""

    UNKNOWN = 0
    COUNTER = 1
    GAUGE = 2
    HISTOGRAM = 3
    GAUGEHISTOGRAM = 4
    SUMMARY = 5
    INFO = 6
    STATESET = 7


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """Type, help and unit of a metric family, as senders report them."""

    family: str
    type: MetricType = MetricType.UNKNOWN
    help: str = ""
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Exemplar:
    """An exemplar: a sample with its own labels (usually ``trace_id``)."""

    labels: Labels
    value: float
    timestamp: int


class ResetHint(enum.IntEnum):
    """Whether a histogram sample follows a counter reset (or is a gauge histogram)."""

    UNKNOWN = 0
    YES = 1
    NO = 2
    GAUGE = 3


_DOUBLE = struct.Struct("<d")
_UINT64 = struct.Struct("<Q")


def float_bits(value: float) -> int:
    """The 64 bits of a float64 as an unsigned int: the only faithful way to compare NaN payloads and -0.0.

    Backends compare and store values by these bits; :func:`float_from_bits`
    is the inverse.

    >>> hex(float_bits(-0.0)), float_bits(0.0) == float_bits(-0.0)
    ('0x8000000000000000', False)
    """
    return int(_UINT64.unpack(_DOUBLE.pack(value))[0])


def float_from_bits(pattern: int) -> float:
    """The float64 with exactly these 64 bits, the inverse of :func:`float_bits`.

    ``float_from_bits(0x7FF0000000000002)`` is Prometheus' stale marker, a NaN
    that keeps its payload through this round trip.
    """
    return float(_DOUBLE.unpack(_UINT64.pack(pattern))[0])


def _exact(value: object) -> object:
    if isinstance(value, float):
        return ("f", float_bits(value))
    if isinstance(value, tuple):
        return tuple(_exact(item) for item in value)
    return value


@dataclass(frozen=True, slots=True, eq=False)
class Histogram:
    """One native-histogram sample, in Prometheus' sparse bucket layout.

    Integer histograms (``is_float`` false) carry bucket counts as deltas to
    the previous bucket in ``positive_buckets``/``negative_buckets``; float
    histograms carry absolute counts. Spans are ``(offset, length)`` pairs.
    """

    timestamp: int
    count: int | float
    sum: float
    schema: int
    zero_threshold: float
    zero_count: int | float
    is_float: bool = False
    negative_spans: tuple[tuple[int, int], ...] = ()
    negative_buckets: tuple[int | float, ...] = ()
    positive_spans: tuple[tuple[int, int], ...] = ()
    positive_buckets: tuple[int | float, ...] = ()
    reset_hint: ResetHint = ResetHint.UNKNOWN
    custom_values: tuple[float, ...] = ()

    def identity(self) -> tuple[object, ...]:
        """Every field, floats as their bits: equal identities mean bit-identical histograms."""
        return tuple(_exact(getattr(self, name)) for name in _HISTOGRAM_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(self.identity())


_HISTOGRAM_FIELDS = tuple(f.name for f in fields(Histogram))


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """Float samples as one XOR chunk, Prometheus' encoding (see :mod:`remote_storage.chunks`).

    ``data`` is the whole chunk including its 2-byte sample count;
    ``min_time``/``max_time`` are its first and last timestamps (ms), as a
    remote-read ``Chunk`` message carries them. :mod:`remote_storage.chunks`
    builds these; backends store and return them.
    """

    min_time: int
    max_time: int
    data: bytes

    @property
    def count(self) -> int:
        """The number of samples in the chunk (its 2-byte big-endian header)."""
        return int.from_bytes(self.data[:2], "big")


class TimeSeries:
    """One series: its labels and data, in a write request or a query result.

    In a query result for a :class:`Query` with ``accept_chunks`` set, a
    backend may hand over float samples it keeps as XOR chunks in ``chunks``
    instead of decoding them: chunks are in time order, overlap neither each
    other nor the samples in ``timestamps``, and may reach outside the query
    range (readers drop what lies outside). Everywhere else ``chunks`` is empty.

    ``timestamps[i]`` (int64 milliseconds) goes with ``values[i]`` (float64);
    samples are handed over in these parallel sequences rather than one object
    per sample. In a :class:`WriteRequest` the labels may be decoded lazily:
    ``key`` is a cheap identity of the encoded label set, so a backend can look
    a known series up by ``key`` without decoding. Equal keys always mean equal
    label sets, across requests and protocol versions (backends cache them);
    equal label sets may still arrive under different keys.

    A backend that keeps label sets joined (:func:`join_labels`) may also
    hand them over as such in ``joined_labels``, in a query result: the
    server then writes the response from those bytes, and ``labels`` need
    not be decoded (pair them with :meth:`lazy`). None (the default) means
    "use ``labels``".
    """

    __slots__ = (
        "_decode",
        "_labels",
        "chunks",
        "exemplars",
        "histograms",
        "joined_labels",
        "key",
        "timestamps",
        "values",
    )

    def __init__(
        self,
        labels: Labels,
        timestamps: Sequence[int] = (),
        values: Sequence[float] = (),
        histograms: Sequence[Histogram] = (),
        exemplars: Sequence[Exemplar] = (),
        *,
        key: Hashable = None,
        chunks: Sequence[EncodedChunk] = (),
        joined_labels: bytes | None = None,
    ) -> None:
        if len(timestamps) != len(values):
            raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
        self._labels: Labels | None = labels
        self._decode: Callable[[], Labels] | None = None
        self.key: Hashable = labels if key is None else key
        self.timestamps = timestamps
        self.values = values
        self.histograms = histograms
        self.exemplars = exemplars
        self.chunks = chunks
        self.joined_labels = joined_labels

    @classmethod
    def lazy(
        cls,
        key: Hashable,
        decode: Callable[[], Labels],
        timestamps: Sequence[int] = (),
        values: Sequence[float] = (),
        histograms: Sequence[Histogram] = (),
        exemplars: Sequence[Exemplar] = (),
        *,
        chunks: Sequence[EncodedChunk] = (),
        joined_labels: bytes | None = None,
    ) -> TimeSeries:
        """A series whose labels are decoded by ``decode()`` on first access."""
        series = cls.__new__(cls)  # skips __init__'s checks: this is the decoders' hot path
        series._labels = None
        series._decode = decode
        series.key = key
        series.timestamps = timestamps
        series.values = values
        series.histograms = histograms
        series.exemplars = exemplars
        series.chunks = chunks
        series.joined_labels = joined_labels
        return series

    @property
    def labels(self) -> Labels:
        if self._labels is None:
            assert self._decode is not None
            self._labels = self._decode()
            self._decode = None
        return self._labels

    def samples(self) -> Iterable[tuple[int, float]]:
        """``(timestamp, value)`` pairs, for code that prefers them to two sequences."""
        return zip(self.timestamps, self.values, strict=True)

    def __repr__(self) -> str:
        return (
            f"TimeSeries({self.labels}, samples={len(self.timestamps)}, "
            f"histograms={len(self.histograms)}, exemplars={len(self.exemplars)})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeSeries):
            return NotImplemented
        return (
            self.labels == other.labels
            and list(self.timestamps) == list(other.timestamps)
            and _same_bits(self.values, other.values)
            and list(self.histograms) == list(other.histograms)
            and list(self.exemplars) == list(other.exemplars)
            and list(self.chunks) == list(other.chunks)
        )

    __hash__ = None  # type: ignore[assignment]


def _same_bits(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(map(int.__eq__, map(float_bits, a), map(float_bits, b)))


class SampleBatch:
    """The float samples of a write request as columns: one row per sample, no object per series.

    Decoders hand this over beside :attr:`WriteRequest.series` for the
    request Prometheus sends most (every entry one series with one sample,
    nothing else), so that a backend may store it without building a Python
    object per series. Row ``i`` is the sample ``(timestamps[i], values[i])``
    of the series with encoding key ``keys[i]`` (see :attr:`TimeSeries.key`;
    equal keys are equal label sets). ``value_bits[i]`` is the same value's 64
    bits read as a signed integer. A key may appear in several rows;
    :meth:`labels` decodes (once) the label set of a key, which the decoder
    has already validated.

    Using it is optional: :attr:`WriteRequest.series` holds the same samples
    grouped by key, built from the columns on first access.
    """

    __slots__ = ("_labels", "keys", "timestamps", "value_bits", "values")

    def __init__(
        self,
        keys: Sequence[Hashable],
        timestamps: bytes,
        values: bytes,
        labels: Callable[[Hashable], Labels],
    ) -> None:
        """``timestamps`` and ``values`` pack one native int64 / float64 per row."""
        if len(timestamps) != 8 * len(keys) or len(values) != 8 * len(keys):
            raise ValueError(f"{len(keys)} keys but {len(timestamps)} and {len(values)} bytes of samples")
        self.keys = keys
        self.timestamps: Sequence[int] = memoryview(timestamps).cast("q")
        self.values: Sequence[float] = memoryview(values).cast("d")
        self.value_bits: Sequence[int] = memoryview(values).cast("q")
        self._labels = labels

    def labels(self, key: Hashable) -> Labels:
        """The label set of a key of this batch."""
        return self._labels(key)

    def __len__(self) -> int:
        return len(self.keys)

    def series(self) -> list[TimeSeries]:
        """The rows grouped by key, in first-seen order, as :class:`TimeSeries` with lazy labels."""
        grouped: dict[Hashable, tuple[list[int], list[float]]] = {}
        for key, timestamp, value in zip(self.keys, self.timestamps, self.values, strict=True):
            entry = grouped.get(key)
            if entry is None:
                grouped[key] = ([timestamp], [value])
            else:
                entry[0].append(timestamp)
                entry[1].append(value)
        return [
            TimeSeries.lazy(key, partial(self._labels, key), timestamps, values)
            for key, (timestamps, values) in grouped.items()
        ]


class WriteRequest:
    """One remote-write request, decoded and validated, whatever its version.

    Each label set appears in one entry of ``series`` per encoding key, with
    the samples of all the request's entries for it. Label sets are valid
    (non-empty, names unique, sorted, no empty values). When the decoder
    provides ``batch`` (see :class:`SampleBatch`), ``series`` is built from it
    on first access; a backend may read either.
    """

    __slots__ = ("_series", "batch", "metadata")

    def __init__(
        self,
        series: list[TimeSeries] | None = None,
        metadata: list[MetricMetadata] | None = None,
        *,
        batch: SampleBatch | None = None,
    ) -> None:
        if series is not None and batch is not None:
            raise ValueError("give series or batch, not both")
        self._series = series if series is not None or batch is not None else []
        self.batch = batch
        self.metadata = [] if metadata is None else metadata

    @property
    def series(self) -> list[TimeSeries]:
        if self._series is None:
            assert self.batch is not None
            self._series = self.batch.series()
        return self._series

    @property
    def sample_count(self) -> int:
        if self._series is None and self.batch is not None:
            return len(self.batch)
        return sum(len(s.timestamps) for s in self.series)

    @property
    def histogram_count(self) -> int:
        if self._series is None and self.batch is not None:
            return 0
        return sum(len(s.histograms) for s in self.series)

    @property
    def exemplar_count(self) -> int:
        if self._series is None and self.batch is not None:
            return 0
        return sum(len(s.exemplars) for s in self.series)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WriteRequest):
            return NotImplemented
        return self.series == other.series and self.metadata == other.metadata

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"WriteRequest(series={len(self.series)}, metadata={len(self.metadata)})"


@dataclass(frozen=True, slots=True)
class ReadHints:
    """Advisory hints Prometheus sends with a query; backends may ignore them."""

    step_ms: int = 0
    func: str = ""
    start_ms: int = 0
    end_ms: int = 0
    grouping: tuple[str, ...] = ()
    by: bool = False
    range_ms: int = 0


@dataclass(frozen=True, slots=True)
class Query:
    """Select series matching every matcher, with samples in ``[start_ms, end_ms]``."""

    start_ms: int
    end_ms: int
    matchers: tuple[Matcher, ...]
    hints: ReadHints | None = None
    #: the reader takes :attr:`TimeSeries.chunks` (streamed remote read); backends may ignore it
    accept_chunks: bool = False


@dataclass(frozen=True, slots=True)
class ReadRequest:
    queries: tuple[Query, ...]


@dataclass(slots=True)
class QueryResult:
    """The series one query selected, sorted by label set."""

    series: list[TimeSeries] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StorageStats:
    """What a backend says about itself; None where it cannot tell cheaply."""

    #: series held, all tenants together
    series: int | None = None
    #: bytes held for float samples (in memory or on disk), all tenants together
    sample_bytes: int | None = None
    #: bytes of sealed XOR chunk data (encoded samples only, no records around them)
    sealed_chunk_bytes: int | None = None
    #: float samples inside those sealed chunks
    sealed_samples: int | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a backend knows about the request it serves.

    ``tenant`` isolates data; ``headers`` are the HTTP request headers
    (lower-cased names); ``deadline`` is a :func:`time.monotonic` instant after
    which the caller has given up, or None.
    """

    tenant: str = DEFAULT_TENANT
    headers: Mapping[str, str] = field(default_factory=dict)
    deadline: float | None = None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


class RemoteStorage(abc.ABC):
    """Base class of every storage backend. Implement ``write`` and ``process_query``.

    ``start`` and ``close`` bracket the backend's life in the server; override
    them to open and release connections or files.
    """

    @abc.abstractmethod
    async def write(self, ctx: Context, request: WriteRequest) -> None:
        """Store every series of ``request``; return once durable, raise to store nothing."""

    @abc.abstractmethod
    def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        """Yield the series matching ``query`` sorted by labels, samples inside its range."""

    async def read(self, ctx: Context, request: ReadRequest) -> list[QueryResult]:
        """Answer every query of a request concurrently; results in query order."""

        async def collect(query: Query) -> QueryResult:
            return QueryResult([series async for series in self.process_query(ctx, query)])

        return list(await asyncio.gather(*(collect(q) for q in request.queries)))

    async def metadata(self, ctx: Context) -> dict[str, MetricMetadata]:
        """The latest metadata per metric family written by ``ctx.tenant``.

        Served on ``GET /api/v1/metadata``. The default keeps none: a backend
        that stores metadata overrides it.
        """
        return {}

    async def stats(self) -> StorageStats:
        """Figures for the service's own metrics, asked at every scrape of ``/metrics``.

        The default reports nothing; a backend fills in what it can tell cheaply.
        """
        return StorageStats()

    def unavailable(self) -> str | None:
        """Why the backend cannot take writes right now (one line), or None when it can.

        ``GET /-/ready`` answers 503 with this reason while it is not None and
        200 once it is None again, so a load balancer stops sending writes to
        a process whose database is down and sends them again when it is back.
        The default is always None. It is called on every readiness probe, on
        the event loop: answer from state the backend already keeps (its
        connection's last outcome, say), never with I/O.
        """
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Open resources. Called once before the first request."""

    async def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release resources. Called once at shutdown, after the last request."""

    def describe(self) -> str:
        """A short human-readable description for logs (no secrets)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.describe()}>"
