"""The aiohttp application: remote write, remote read, health, readiness and metrics.

Routes::

    POST /api/v1/write   remote write 1.0 and 2.0 (chosen by Content-Type)
    POST /api/v1/read    remote read (SAMPLES or STREAMED_XOR_CHUNKS)
    GET  /api/v1/metadata metric metadata (type, help, unit), as Prometheus' status API
    GET  /-/healthy      200 while the process runs
    GET  /-/ready        200 while the backend is open and can take writes, else 503 and why
    GET  /metrics        the service's own metrics

Errors are :class:`~remote_storage.errors.RemoteStorageError` subclasses,
answered with their status and a plain-text reason; anything else is a server
fault (500, details in the log only). A write is acknowledged (204) only after
the backend's ``write`` returned, i.e. once the samples are durable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

from aiohttp import web

from remote_storage import __version__, browse, connections
from remote_storage.active_series import ActiveSeries
from remote_storage.auth import AuthConfig, auth_middleware, bound_tenant, load_auth
from remote_storage.backpressure import ByteBudget, Reservation, Slots
from remote_storage.config import Settings
from remote_storage.decode_process import DecodeProcess
from remote_storage.errors import (
    BodyTooLarge,
    Overloaded,
    ReadTimeout,
    RemoteStorageError,
    RequestBodyTimeout,
)
from remote_storage.instrument import Registry, choose_encoder
from remote_storage.logs import RateLimiter
from remote_storage.protocol import snappy, streamed
from remote_storage.protocol.limits import check_request
from remote_storage.protocol.negotiation import (
    ResponseType,
    WriteVersion,
    check_content_encoding,
    choose_response_type,
    write_version,
)
from remote_storage.protocol.read import decode_read_request, encode_read_response
from remote_storage.protocol.validation import LabelValidator
from remote_storage.protocol.wire import records
from remote_storage.protocol.write import decode_v1, decode_v2
from remote_storage.read_budget import SampleBudget, collect_results
from remote_storage.recent import IngestHistory, RecentErrors
from remote_storage.status import StatusPage, render_page
from remote_storage.storage import (
    Context,
    Query,
    ReadRequest,
    RemoteStorage,
    StorageStats,
    TimeSeries,
    WriteRequest,
)
from remote_storage.telemetry import ServiceMetrics

__all__ = ["ServerState", "connection_guard", "create_app"]

log = logging.getLogger("remote_storage.server")

SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
HISTOGRAMS_WRITTEN = "X-Prometheus-Remote-Write-Histograms-Written"
EXEMPLARS_WRITTEN = "X-Prometheus-Remote-Write-Exemplars-Written"
IMPLEMENTED_RESPONSE_TYPES = (ResponseType.SAMPLES, ResponseType.STREAMED_XOR_CHUNKS)
#: Series buffered per query while earlier queries are being streamed.
STREAM_PREFETCH = 64
#: Series a query's producer hands over at once: a queue hand-over costs more than encoding a series.
STREAM_BATCH = 16
#: Bytes of frames gathered before they are written: one write per frame costs more than the frame.
STREAM_WRITE_BYTES = 64 * 1024
#: Decompressed bodies above this size are decompressed and decoded in a thread, off the event loop.
OFFLOAD_DECODE_BYTES = 1024 * 1024
#: SAMPLES answers above this many samples are encoded and compressed in a thread.
OFFLOAD_ENCODE_SAMPLES = 100_000


@dataclass
class ServerState:
    """Everything the handlers share, stored once in the application."""

    storage: RemoteStorage
    settings: Settings
    metrics: ServiceMetrics
    validator: LabelValidator
    write_bytes: ByteBudget
    reads: Slots
    guard: connections.ConnectionGuard
    active_series: ActiveSeries
    status: StatusPage
    history: IngestHistory = dataclasses.field(default_factory=IngestHistory)
    errors: RecentErrors = dataclasses.field(default_factory=RecentErrors)
    #: at most 10 log lines per reason of refusal per minute
    refusal_log: RateLimiter = dataclasses.field(default_factory=lambda: RateLimiter(burst=10, window=60.0))
    started: float = dataclasses.field(default_factory=time.time)
    ready: bool = False
    auth: AuthConfig | None = None
    #: the child process remote-write 1.0 bodies are decoded in (``--decoder``), or None
    decoder: DecodeProcess | None = None


STATE = web.AppKey("state", ServerState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message.rstrip("\n") + "\n", charset="utf-8")


def _error_response(exc: RemoteStorageError) -> web.Response:
    """The answer to a known error: its status and message, ``Retry-After`` on 429."""
    response = _text(exc.http_status, str(exc))
    if isinstance(exc, Overloaded):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, RequestBodyTimeout):
        response.force_close()
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer errors that escaped a handler: known ones with their status, others with 500.

    A client that went away mid-request is no server fault: logged at debug
    and counted with the status 499 (nothing can be sent to it any more).
    """
    try:
        return await handler(request)
    except RemoteStorageError as exc:
        return _error_response(exc)
    except web.HTTPException:
        raise
    except Exception as exc:
        if connections.client_gone(request, exc):
            log.debug("client went away during %s %s: %s", request.method, request.path, exc)
            return web.Response(status=connections.CLIENT_CLOSED_REQUEST)
        log.exception("internal error serving %s %s", request.method, request.path)
        return _text(500, "internal server error; the server log has the details")


def _timed(name: str, handler: Handler) -> Handler:
    async def timed(request: web.Request) -> web.StreamResponse:
        metrics = request.app[STATE].metrics
        started = time.perf_counter()
        response = await _errors(request, handler)
        metrics.request_duration.labels(name).observe(time.perf_counter() - started)
        metrics.requests.labels(name, str(response.status)).inc()
        if response.status == 429:
            metrics.overloaded.labels(name).inc()
        elif response.status == connections.CLIENT_CLOSED_REQUEST:
            metrics.client_aborts.labels(name).inc()
        return response

    return timed


async def _body(request: web.Request, limit: int) -> bytes:
    """The request body, refused (413) when it is above ``limit`` bytes, 408 when it is too slow."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge("request body", request.content_length, limit, "--max-request-bytes")
    timeout = request.app[STATE].settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge("request body", None, limit, "--max-request-bytes") from None
    except TimeoutError:
        raise RequestBodyTimeout(timeout) from None


# --- back-pressure: write bodies are admitted by bytes, decoded off the loop when large ---


async def _admitted_write(
    request: web.Request, state: ServerState, version: WriteVersion, held: Reservation
) -> WriteRequest:
    """Read, decompress and decode a write body, holding its bytes in ``held`` (429 when they do not fit).

    The compressed size is reserved before the body is read, the decompressed
    size (from the snappy header) before it is decompressed. Large bodies are
    decompressed and decoded in a thread so the event loop keeps serving.
    """
    limit = state.settings.max_request_bytes
    length = request.content_length
    held.add(limit if length is None else min(length, limit))
    body = await _body(request, limit)
    size = snappy.uncompressed_length(body)
    held.add(min(size, limit))
    if version is WriteVersion.V1 and state.decoder is not None:
        found = await state.decoder.decode_v1(body, limit)
        if found is not None:
            state.metrics.decoded_in_process.inc()
            return found
    state.metrics.decoded_inline.inc()
    decode = decode_v2 if version is WriteVersion.V2 else decode_v1

    def decoded() -> WriteRequest:
        found = decode(snappy.decompress(body, limit), state.validator)
        check_request(found, state.validator.limits, time.time_ns() // 1_000_000)
        return found

    if size > OFFLOAD_DECODE_BYTES:
        return await asyncio.to_thread(decoded)
    return decoded()


def _tenant(request: web.Request, settings: Settings) -> str:
    # Credentials bound to a tenant choose it (auth.py refused a header naming another one).
    bound = bound_tenant(request)
    return bound or request.headers.get(settings.tenant_header, "").strip() or settings.default_tenant


def _context(request: web.Request, settings: Settings, timeout: float | None = None) -> Context:
    tenant = _tenant(request, settings)
    deadline = None if timeout is None else time.monotonic() + timeout
    headers = {k.lower(): v for k, v in request.headers.items()}
    if request.app[STATE].auth is not None:
        headers.pop("authorization", None)  # the server's credentials, not the backend's business
    return Context(tenant=tenant, headers=headers, deadline=deadline)


async def handle_write(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        version = write_version(request.headers.get("Content-Type"))
    except RemoteStorageError as exc:
        state.metrics.write_rejected.labels(exc.kind).inc()
        _record(request, "write", exc)
        raise
    state.metrics.write_requests.labels(version.label).inc()
    written: WriteRequest | None = None
    try:
        check_content_encoding(request.headers.get("Content-Encoding"))
        with state.write_bytes.reserve() as held:
            write_request = await _admitted_write(request, state, version, held)
            ctx = _context(request, state.settings)
            state.active_series.admit(ctx.tenant, _series_keys(write_request))
            started = time.perf_counter()
            await state.storage.write(ctx, write_request)
            state.metrics.backend_write_duration.observe(time.perf_counter() - started)
            written = write_request
    except RemoteStorageError as exc:
        state.metrics.write_rejected.labels(exc.kind).inc()
        _record(request, "write", exc)
        response = _error_response(exc)
    except Exception as exc:
        gone = connections.client_gone(request, exc)
        state.metrics.write_rejected.labels("client_abort" if gone else "internal").inc()
        raise
    else:
        state.metrics.samples_written.inc(written.sample_count)
        state.metrics.histograms_written.inc(written.histogram_count)
        state.metrics.exemplars_written.inc(written.exemplar_count)
        state.history.add(written.sample_count + written.histogram_count)
        response = web.Response(status=204)
    if version is WriteVersion.V2:
        # Sent on errors too (with zero counts): a 2.0 sender reads them to
        # tell a 2.0 receiver from a 1.0 one that ignored the Content-Type.
        response.headers[SAMPLES_WRITTEN] = str(written.sample_count if written else 0)
        response.headers[HISTOGRAMS_WRITTEN] = str(written.histogram_count if written else 0)
        response.headers[EXEMPLARS_WRITTEN] = str(written.exemplar_count if written else 0)
    return response


def _record(request: web.Request, handler: str, exc: RemoteStorageError) -> None:
    """Keep a refused or failed request for the status page."""
    state = request.app[STATE]
    tenant = _tenant(request, state.settings)
    state.errors.add(handler, exc.http_status, exc.kind, str(exc), tenant, request.remote or "")
    allowed, held_back = state.refusal_log.allow(exc.kind)
    if allowed:
        fields: dict[str, object] = {
            "status": exc.http_status,
            "reason": exc.kind,
            "tenant": tenant,
            "remote": request.remote or "",
            "bytes": request.content_length if request.content_length is not None else "",
        }
        if held_back:
            fields["similar_not_logged"] = held_back
        log.info("%s refused: %s", handler, str(exc)[: RecentErrors.MESSAGE_CHARS], extra={"fields": fields})


def _series_keys(request: WriteRequest) -> Sequence[Hashable]:
    """The series keys of a write (repeats allowed), without building series from a batch."""
    if request.batch is not None:
        return request.batch.keys
    return [s.key for s in request.series]


async def handle_read(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        with state.reads.take():  # 429 beyond --max-inflight-reads
            return await _serve_read(request, state)
    except RemoteStorageError as exc:
        state.metrics.read_rejected.labels(exc.kind).inc()
        _record(request, "read", exc)
        raise


async def _serve_read(request: web.Request, state: ServerState) -> web.StreamResponse:
    settings = state.settings
    check_content_encoding(request.headers.get("Content-Encoding"))
    limit = settings.max_request_bytes
    payload = snappy.decompress(await _body(request, limit), limit)
    read_request, accepted = decode_read_request(payload)
    response_type = choose_response_type(accepted, IMPLEMENTED_RESPONSE_TYPES)
    state.metrics.read_requests.labels(response_type.name).inc()
    state.metrics.read_queries.inc(len(read_request.queries))
    ctx = _context(request, settings, settings.read_timeout)
    if response_type is ResponseType.STREAMED_XOR_CHUNKS:
        return await _stream_chunks(request, state, ctx, read_request)
    return await _read_samples(state, ctx, read_request)


async def _read_samples(state: ServerState, ctx: Context, read_request: ReadRequest) -> web.Response:
    """One snappy-compressed ``ReadResponse`` with every query's series."""
    settings = state.settings
    started = time.perf_counter()
    budget = SampleBudget(settings)
    try:
        async with asyncio.timeout(settings.read_timeout):
            results = await collect_results(state.storage, ctx, read_request, budget)
    except TimeoutError:
        raise ReadTimeout(settings.read_timeout) from None
    state.metrics.backend_read_duration.observe(time.perf_counter() - started)
    for result in results:
        state.metrics.read_series.inc(len(result.series))
    state.metrics.read_samples.inc(budget.total)

    def encoded() -> bytes:
        return snappy.compress(encode_read_response(results))

    body = await asyncio.to_thread(encoded) if budget.total > OFFLOAD_ENCODE_SAMPLES else encoded()
    return web.Response(
        body=body,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
    )


_END = object()


async def _stream_chunks(
    request: web.Request, state: ServerState, ctx: Context, read_request: ReadRequest
) -> web.StreamResponse:
    """Frames of XOR chunks, one series per frame, written as the series are produced.

    Every query runs at once, each into a small bounded buffer (lists of up
    to :data:`STREAM_BATCH` series, :data:`STREAM_PREFETCH` series in all);
    frames go out in query order, gathered into writes of about
    :data:`STREAM_WRITE_BYTES`, so memory stays bounded whatever the size of
    the answer. Samples are counted per query as frames are made
    (``--read-sample-limit``). Nothing is sent before the first
    :data:`STREAM_WRITE_BYTES` of frames are ready, so an error until then
    (a passed limit included) gets its own status; an error after the first
    byte aborts the connection, which the reader sees as a truncated stream.
    """
    settings = state.settings
    queue_size = max(1, STREAM_PREFETCH // STREAM_BATCH)
    buffers: list[asyncio.Queue[object]] = [asyncio.Queue(queue_size) for _ in read_request.queries]

    async def produce(query: Query, buffer: asyncio.Queue[object]) -> None:
        batch: list[TimeSeries] = []
        try:
            async for series in state.storage.process_query(ctx, query):
                batch.append(series)
                if len(batch) >= STREAM_BATCH:
                    await buffer.put(batch)
                    batch = []
        except Exception as exc:
            if batch:  # what came before the error is streamed, as it would have been unbatched
                await buffer.put(batch)
            await buffer.put(exc)
        else:
            if batch:
                await buffer.put(batch)
            await buffer.put(_END)

    producers = [
        asyncio.create_task(produce(dataclasses.replace(query, accept_chunks=True), buffer))
        for query, buffer in zip(read_request.queries, buffers, strict=True)
    ]
    response = web.StreamResponse(headers={"Content-Type": streamed.CONTENT_TYPE})
    frames = _Frames(request, response, state, SampleBudget(settings, whole_request=False))
    try:
        async with asyncio.timeout(settings.read_timeout):
            first = [await buffers[0].get()] if buffers else []
            if first and isinstance(first[0], Exception):
                raise first[0]  # nothing sent yet: answered with a proper status
            for index, buffer in enumerate(buffers):
                query = read_request.queries[index]
                while True:
                    item = first.pop() if first else await buffer.get()
                    if item is _END:
                        break
                    if isinstance(item, Exception):
                        if response.prepared:  # what came before the error goes out, then the abort
                            await frames.flush()
                        raise item
                    assert isinstance(item, list)
                    for series in item:
                        frames.add_series(index, series, query, settings.read_max_bytes_in_frame)
                    if frames.size >= STREAM_WRITE_BYTES:
                        await frames.flush()
            await frames.flush()
            if not response.prepared:
                await response.prepare(request)
    except BaseException as exc:
        if response.prepared and not connections.client_gone(request, exc):
            # Part of the answer is out: only a truncated stream tells the reader.
            connections.abort(request)
            log.warning("streamed remote read cut off after its first bytes: %s", exc or type(exc).__name__)
        if isinstance(exc, TimeoutError):
            raise ReadTimeout(settings.read_timeout) from None
        raise
    finally:
        frames.count()
        for task in producers:
            task.cancel()
        await asyncio.gather(*producers, return_exceptions=True)
    await response.write_eof()
    return response


class _Frames:
    """The frames of a streamed answer not yet written, and the series and samples not yet counted."""

    __slots__ = ("budget", "metrics", "pending", "request", "response", "samples", "series", "size")

    def __init__(
        self, request: web.Request, response: web.StreamResponse, state: ServerState, budget: SampleBudget
    ) -> None:
        self.request = request
        self.response = response
        self.budget = budget
        self.metrics = state.metrics
        self.pending: list[bytes] = []
        self.size = 0
        self.series = 0
        self.samples = 0

    def add_series(self, index: int, series: TimeSeries, query: Query, max_frame_bytes: int) -> None:
        chunks = streamed.chunks_of(series, query.start_ms, query.end_ms)
        if not chunks:
            return  # histogram-only series: not representable here
        data, samples = streamed.series_frames(index, records.label_records(series), chunks, max_frame_bytes)
        self.budget.add(index, samples)
        self.series += 1
        self.samples += samples
        self.pending.append(data)
        self.size += len(data)

    async def flush(self) -> None:
        """Count what was encoded, then write the pending frames in one piece."""
        self.count()
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            self.size = 0
            if not self.response.prepared:
                await self.response.prepare(self.request)
            await self.response.write(data)

    def count(self) -> None:
        if self.series:
            self.metrics.read_series.inc(self.series)
            self.metrics.read_samples.inc(self.samples)
            self.series = self.samples = 0


async def handle_metadata(request: web.Request) -> web.Response:
    """Prometheus' ``/api/v1/metadata``: ``?metric=NAME`` and ``?limit=N`` as there."""
    state = request.app[STATE]
    metric = request.query.get("metric", "")
    try:
        limit = int(request.query.get("limit", "-1") or "-1")
    except ValueError:
        return _json_error(400, "bad_data", f"invalid limit {request.query['limit']!r}: not an integer")
    found = await state.storage.metadata(_context(request, state.settings))
    data: dict[str, list[dict[str, str]]] = {}
    for family in sorted(found):
        if metric and family != metric:
            continue
        if 0 <= limit <= len(data):
            break
        m = found[family]
        data[family] = [{"type": m.type.name.lower(), "help": m.help, "unit": m.unit}]
    return web.json_response({"status": "success", "data": data})


def _json_error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response({"status": "error", "errorType": error_type, "error": message}, status=status)


async def handle_status_page(request: web.Request) -> web.Response:
    """The status page (see :mod:`remote_storage.status`) of the request's tenant."""
    state = request.app[STATE]
    ctx = _context(request, state.settings)
    page = render_page(
        version=__version__,
        backend=state.storage.describe(),
        tenant=ctx.tenant,
        uptime=time.time() - state.started,
        stats=await state.storage.stats(),
        history=state.history,
        rejections={
            sample.labels["reason"]: sample.value
            for family in state.metrics.write_rejected.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        },
        active_series=state.active_series.count(ctx.tenant),
        found=await state.status.cardinality(ctx),
        errors=state.errors.list(),
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def handle_tsdb_status(request: web.Request) -> web.Response:
    """Prometheus' ``/api/v1/status/tsdb`` for the request's tenant."""
    state = request.app[STATE]
    found = await state.status.cardinality(_context(request, state.settings))
    return web.json_response({"status": "success", "data": found.as_prometheus()})


async def handle_healthy(request: web.Request) -> web.Response:
    return _text(200, "Healthy")


async def handle_ready(request: web.Request) -> web.Response:
    """200 while the backend is open and can take writes; 503 with the reason otherwise."""
    state = request.app[STATE]
    if not state.ready:
        return _text(503, "Service Unavailable: the storage backend is not open")
    reason = state.storage.unavailable()
    if reason is not None:
        return _text(503, f"Service Unavailable: {reason}")
    return _text(200, "Ready")


async def handle_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        async with asyncio.timeout(5):
            stats = await state.storage.stats()
    except Exception:
        log.warning("the storage backend did not report its figures", exc_info=True)
        stats = StorageStats()
    if stats.series is not None:
        state.metrics.stored_series.set(stats.series)
    if stats.sample_bytes is not None:
        state.metrics.sample_bytes.set(stats.sample_bytes)
    if stats.sealed_chunk_bytes is not None:
        state.metrics.sealed_chunk_bytes.set(stats.sealed_chunk_bytes)
    if stats.sealed_samples is not None:
        state.metrics.sealed_samples.set(stats.sealed_samples)
    state.metrics.active_series.clear()  # tenants whose series all aged out are dropped
    for tenant, count in state.active_series.counts().items():
        state.metrics.active_series.labels(tenant).set(count)
    state.metrics.inflight_write_bytes.set(state.write_bytes.in_use)
    state.metrics.inflight_reads.set(state.reads.in_use)
    state.metrics.open_connections.set(state.guard.open_connections)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(state.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})


def _storage_of(request: web.Request) -> RemoteStorage:
    return request.app[STATE].storage


def _context_of(request: web.Request) -> Context:
    return _context(request, request.app[STATE].settings)


def create_app(
    storage: RemoteStorage,
    settings: Settings | None = None,
    registry: Registry | None = None,
    *,
    decode_process: bool = False,
) -> web.Application:
    """Build the application; the backend (and a decode process, if asked) start and stop with it."""
    settings = settings or Settings()
    metrics = ServiceMetrics(registry if registry is not None else Registry())
    state = ServerState(
        storage=storage,
        settings=settings,
        metrics=metrics,
        validator=LabelValidator(settings.label_names, limits=settings.write_limits),
        active_series=ActiveSeries(settings.max_active_series, settings.active_series_window),
        status=StatusPage(storage),
        write_bytes=ByteBudget(
            settings.max_inflight_write_bytes, "write bytes", "--max-inflight-write-bytes"
        ),
        reads=Slots(settings.max_inflight_reads, "read requests", "--max-inflight-reads"),
        guard=connections.ConnectionGuard(
            settings.max_connections or connections.default_max_connections(),
            settings.header_timeout,
            lambda reason: metrics.connections_closed.labels(reason).inc(),
            lambda name: metrics.accept_errors.labels(name).inc(),
        ),
    )
    # The body limit is enforced in _body with a clear message; aiohttp's own
    # limit sits just above it as a backstop for bodies without Content-Length.
    # Bodies are taken as sent: the handlers check Content-Encoding themselves
    # (only snappy, else 415), so aiohttp must not inflate gzip on its own.
    app = web.Application(
        client_max_size=settings.max_request_bytes + 1, handler_args={"auto_decompress": False}
    )
    app[STATE] = state
    # Authentication (--auth-config): one middleware in front of every route but the health checks.
    state.auth = load_auth(settings)
    if state.auth is not None:
        app.middlewares.append(auth_middleware(state.auth, settings.tenant_header, state.metrics.registry))

    async def storage_lifetime(app: web.Application) -> AsyncIterator[None]:
        await storage.start()
        if decode_process:
            state.decoder = DecodeProcess(state.validator)
            await state.decoder.start()
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            if state.decoder is not None:
                await state.decoder.close()
            await storage.close()

    app.cleanup_ctx.append(storage_lifetime)
    app.router.add_post("/api/v1/write", _timed("write", handle_write))
    app.router.add_post("/api/v1/read", _timed("read", handle_read))
    app.router.add_get("/api/v1/metadata", _timed("metadata", handle_metadata))
    for path, name, lister, need_match in (
        ("/api/v1/labels", "labels", browse.label_names, False),
        ("/api/v1/label/{name}/values", "label_values", browse.label_values, False),
        ("/api/v1/series", "series", browse.series, True),
    ):
        browse_handler = _timed(name, browse.handler(_storage_of, _context_of, lister, need_match))
        app.router.add_get(path, browse_handler)
        app.router.add_post(path, browse_handler)
    app.router.add_get("/", _timed("status", handle_status_page))
    app.router.add_get("/api/v1/status/tsdb", _timed("tsdb_status", handle_tsdb_status))
    app.router.add_get("/-/healthy", _timed("healthy", handle_healthy))
    app.router.add_get("/-/ready", _timed("ready", handle_ready))
    app.router.add_get("/metrics", _timed("metrics", handle_metrics))
    return app


def connection_guard(app: web.Application) -> connections.ConnectionGuard:
    """The guard of the application's connections, for the runner that serves it."""
    return app[STATE].guard
