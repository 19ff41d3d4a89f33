"""The HTTP server with the in-memory backend: status codes, round trips, untouched data on errors."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from remote_storage.backends.memory import MemoryStorage
from remote_storage.config import Settings
from remote_storage.errors import StorageUnavailable
from remote_storage.matchers import Matcher
from remote_storage.protocol import snappy
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.pb import remote_pb2
from remote_storage.protocol.validation import NameScheme
from remote_storage.server import create_app
from remote_storage.storage import (
    Context,
    MetricMetadata,
    MetricType,
    Query,
    RemoteStorage,
    TimeSeries,
    WriteRequest,
)
from tests.support.wire import (
    READ_HEADERS,
    V1_HEADERS,
    V2_HEADERS,
    read_body,
    read_results,
    series,
    v1_body,
    v2_body,
)

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
ALL = (0, 10**12, [Matcher.parse("__name__", "=~", ".+")])

Scenario = Callable[[TestClient[Any, Any]], Awaitable[None]]


def run(scenario: Scenario, storage: RemoteStorage | None = None, settings: Settings | None = None) -> None:
    async def main() -> None:
        app = create_app(storage or MemoryStorage(), settings or Settings())
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(main())


async def write(client: TestClient[Any, Any], body: bytes, headers: dict[str, str] = V1_HEADERS) -> Any:
    return await client.post("/api/v1/write", data=body, headers=headers)


async def read_all(client: TestClient[Any, Any], *queries: Any) -> list[list[TimeSeries]]:
    response = await client.post("/api/v1/read", data=read_body(*(queries or (ALL,))), headers=READ_HEADERS)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert response.headers["Content-Encoding"] == "snappy"
    return [r.series for r in read_results(await response.read())]


UP_A = series([1000, 2000, 3000], [1.0, 0.0, STALE], __name__="up", job="a")
UP_B = series([1000, 2000], [1.0, 1.0], __name__="up", job="b")
LOAD = series([1500], [0.5], __name__="load", job="a")


def test_v1_write_then_multi_query_read() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await write(client, v1_body([UP_A, UP_B, LOAD]))
        assert response.status == 204
        assert await response.read() == b""
        assert "X-Prometheus-Remote-Write-Samples-Written" not in response.headers
        results = await read_all(
            client,
            (0, 5000, [Matcher.parse("__name__", "=", "up"), Matcher.parse("job", "=", "b")]),
            (1500, 2500, [Matcher.parse("job", "=", "a")]),
            (0, 5000, [Matcher.parse("__name__", "=", "missing")]),
            (0, 5000, [Matcher.parse("__name__", "=", "up")]),
        )
        assert results[0] == [UP_B]
        # inclusive range, sorted by labels: load{job=a} < up{job=a}
        assert results[1] == [
            series([1500], [0.5], __name__="load", job="a"),
            series([2000], [0.0], __name__="up", job="a"),
        ]
        assert results[2] == []
        assert results[3] == [UP_A, UP_B]
        stale_bits = struct.pack("<d", results[3][0].values[2])
        assert stale_bits == struct.pack("<Q", 0x7FF0000000000002)

    run(scenario)


def test_v2_write_answers_with_written_counts() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        metadata = [MetricMetadata("up", MetricType.GAUGE, "Target is up.", "")]
        response = await write(client, v2_body([UP_A, UP_B], metadata), V2_HEADERS)
        assert response.status == 204, await response.text()
        assert response.headers["X-Prometheus-Remote-Write-Samples-Written"] == "5"
        assert response.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
        assert response.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "0"
        assert await read_all(client) == [[UP_A, UP_B]]
        # v2 errors carry the headers too, with zero counts
        bad = await write(client, b"junk", V2_HEADERS)
        assert bad.status == 400
        assert bad.headers["X-Prometheus-Remote-Write-Samples-Written"] == "0"

    run(scenario)


def test_metadata_only_request_is_accepted() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await write(client, v1_body([], [MetricMetadata("up", MetricType.GAUGE, "Up.", "")]))
        assert response.status == 204

    run(scenario)


def unsorted_body() -> bytes:
    message = remote_pb2.WriteRequest()
    entry = message.timeseries.add()
    entry.labels.add(name="job", value="x")
    entry.labels.add(name="__name__", value="up")
    entry.samples.add(value=1.0, timestamp=5000)
    return snappy.compress(message.SerializeToString())


def wrong_wire_type_body() -> bytes:
    """A valid series, then one whose sample value is a varint: stored, it would read 0.0."""
    message = remote_pb2.WriteRequest()
    good = message.timeseries.add()
    good.labels.add(name="__name__", value="fresh")
    good.samples.add(value=1.0, timestamp=5000)
    entry = message.timeseries.add()
    entry.labels.add(name="__name__", value="up")
    sample = b"\x08\x05\x10\x88\x27"  # value (field 1) as varint 5, timestamp 5000
    entry_bytes = entry.SerializeToString() + b"\x12" + bytes([len(sample)]) + sample
    return snappy.compress(good_bytes(message) + b"\x0a" + bytes([len(entry_bytes)]) + entry_bytes)


def good_bytes(message: remote_pb2.WriteRequest) -> bytes:
    """The request without its last entry."""
    del message.timeseries[-1]
    return message.SerializeToString()


def labels_body(*pairs: tuple[str, str]) -> bytes:
    message = remote_pb2.WriteRequest()
    good = message.timeseries.add()  # a valid series in the same request must not be stored either
    good.labels.add(name="__name__", value="fresh")
    good.samples.add(value=1.0, timestamp=5000)
    entry = message.timeseries.add()
    for name, value in pairs:
        entry.labels.add(name=name, value=value)
    entry.samples.add(value=1.0, timestamp=5000)
    return snappy.compress(message.SerializeToString())


BAD_BODIES = {
    "garbage": (b"this is not snappy", "invalid snappy block"),
    "bad snappy": (b"\x40\x00\x01\x02", "invalid snappy block"),
    "bad protobuf": (
        snappy.compress(b"\x0a\xff\xff\xff\x0f\x01"),
        "invalid prometheus.WriteRequest protobuf",
    ),
    "unsorted duplicate label names": (
        labels_body(("job", "a"), ("__name__", "up"), ("job", "b")),
        "'job' appears more than once",
    ),
    "label value too long": (
        labels_body(("__name__", "up"), ("job", "x" * 3000)),
        "is 3000 bytes, above the limit of 2048 (raise --max-label-value-length)",
    ),
    "label name too long": (
        labels_body(("__name__", "up"), ("n" * 1100, "x")),
        "above the limit of 1024 (raise --max-label-name-length)",
    ),
    "too many labels": (
        labels_body(("__name__", "up"), *((f"l{i:03}", "v") for i in range(70))),
        "has 71 labels, above the limit of 64 (raise --max-labels-per-series)",
    ),
    "value sent as varint": (
        wrong_wire_type_body(),
        "field 'value' (number 1) was sent with wire type varint",
    ),
    "duplicate label names": (
        labels_body(("__name__", "up"), ("job", "a"), ("job", "b")),
        "'job' appears more than once",
    ),
    "empty label name": (labels_body(("", "v"), ("__name__", "up")), "label name is empty"),
    "empty label set": (labels_body(), "the label set is empty"),
    "no metric name": (labels_body(("job", "a")), "no metric name"),
    "invalid label name (legacy)": (labels_body(("__name__", "up"), ("bad-name", "x")), "invalid label name"),
    "sample conflict": (v1_body([series([1000], [42.0], __name__="up", job="a")]), "duplicate sample"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_gets_400_and_leaves_data_untouched(case: str) -> None:
    body, reason = BAD_BODIES[case]

    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await write(client, v1_body([UP_A]))).status == 204
        response = await write(client, body)
        assert response.status == 400
        assert response.headers["Content-Type"].startswith("text/plain")
        assert reason in await response.text()
        assert await read_all(client) == [[UP_A]]

    run(scenario, settings=Settings(label_names=NameScheme.LEGACY))


def test_unsorted_labels_are_stored_sorted() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await write(client, unsorted_body())).status == 204
        assert await read_all(client) == [[series([5000], [1.0], __name__="up", job="x")]]

    run(scenario)


def rejections(text: str) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == "remote_storage_write_requests_rejected":
            found = {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}
    return found


def test_limits_refuse_whole_requests_and_are_counted_by_reason() -> None:
    now_ms = int(time.time() * 1000)
    settings = Settings(
        max_series_per_request=2,
        max_samples_per_request=4,
        max_active_series=3,
        retention=3600.0,  # samples older than an hour are refused: --max-sample-age follows it
    )
    cases = [
        (
            v1_body([series([now_ms], [1.0], __name__=f"s{i}") for i in range(3)]),
            "3 series",
            "too_many_series",
        ),
        (
            v1_body([series([now_ms + i for i in range(5)], [1.0] * 5, __name__="s")]),
            "5 samples",
            "too_many_samples",
        ),
        (
            v1_body([series([now_ms + 11 * 60_000], [1.0], __name__="s")]),
            "ahead of the server's clock",
            "sample_too_new",
        ),
        (v1_body([series([now_ms - 7_200_000], [1.0], __name__="s")]), "--max-sample-age", "sample_too_old"),
    ]

    async def scenario(client: TestClient[Any, Any]) -> None:
        for body, reason, _ in cases:
            for headers in (V1_HEADERS,):
                response = await write(client, body, headers)
                assert response.status == 400
                assert reason in await response.text()
        # the active-series limit: three series are fine, a fourth new one is not, old ones still are
        first = v1_body([series([now_ms], [1.0], __name__=f"a{i}") for i in range(2)])
        assert (await write(client, first)).status == 204
        assert (await write(client, v1_body([series([now_ms], [1.0], __name__="a2")]))).status == 204
        refused = await write(client, v1_body([series([now_ms], [1.0], __name__="a3")]))
        assert refused.status == 400
        assert "tenant 'default' has 3 active series" in await refused.text()
        assert (await write(client, v1_body([series([now_ms + 1], [2.0], __name__="a0")]))).status == 204
        other = await write(
            client, v1_body([series([now_ms], [1.0], __name__="a3")]), {**V1_HEADERS, "X-Scope-OrgID": "t2"}
        )
        assert other.status == 204  # a limit per tenant
        text = await (await client.get("/metrics")).text()
        counts = rejections(text)
        for _, _, kind in cases:
            assert counts[kind] == 1
        assert counts["too_many_active_series"] == 1
        active = {
            s.labels["tenant"]: s.value
            for family in text_string_to_metric_families(text)
            if family.name == "remote_storage_active_series"
            for s in family.samples
        }
        assert active == {"default": 3, "t2": 1}
        assert "process_resident_memory_bytes " in text
        assert "process_open_fds " in text
        [stored] = await read_all(client, (0, now_ms + 60_000, ALL[2]))
        assert sorted(s.labels.metric_name for s in stored) == ["a0", "a1", "a2"]

    run(scenario, settings=settings)


def test_duplicate_samples_are_idempotent() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        for _ in range(3):
            assert (await write(client, v1_body([UP_A]))).status == 204
        assert await read_all(client) == [[UP_A]]

    run(scenario)


def test_unsupported_media_type_and_encoding_are_415() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        body = v1_body([UP_A])
        for headers in (
            {"Content-Type": "application/json"},
            {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"},
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        ):
            response = await write(client, body, headers)
            assert response.status == 415, headers
            assert await response.text()
        read = await client.post("/api/v1/read", data=read_body(ALL), headers={"Content-Encoding": "zstd"})
        assert read.status == 415
        assert await read_all(client) == [[]]

    run(scenario)


def test_missing_headers_mean_v1_snappy() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await client.post(
            "/api/v1/write", data=v1_body([UP_A]), skip_auto_headers=["Content-Type"]
        )
        assert response.status == 204
        assert await read_all(client) == [[UP_A]]

    run(scenario)


def test_wrong_method_is_405() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/api/v1/write")).status == 405
        assert (await client.put("/api/v1/read")).status == 405
        assert (await client.post("/metrics")).status == 405

    run(scenario)


def test_body_limits_are_413() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        too_long = await write(client, b"\x00" * 4096)
        assert too_long.status == 413
        assert "--max-request-bytes" in await too_long.text()
        # small body whose snappy header claims more than the limit (uvarint 100000)
        bomb = bytes([0xA0, 0x8D, 0x06]) + b"\x00" * 16
        response = await write(client, bomb)
        assert response.status == 413
        assert "decompressed body of 100000 bytes" in await response.text()
        read = await client.post("/api/v1/read", data=bomb, headers=READ_HEADERS)
        assert read.status == 413

    run(scenario, settings=Settings(max_request_bytes=2048))


def test_read_rejects_unsupported_response_types_and_bad_queries() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        message = remote_pb2.ReadRequest.FromString(snappy.decompress(read_body(ALL), 1 << 20))
        message.ClearField("accepted_response_types")
        message.accepted_response_types.append(7)  # a type from the future
        body = snappy.compress(message.SerializeToString())
        response = await client.post("/api/v1/read", data=body, headers=READ_HEADERS)
        assert response.status == 400
        assert "response types" in await response.text()
        # accepts a future type first, then samples: gets samples
        message.accepted_response_types.append(ResponseType.SAMPLES)
        body = snappy.compress(message.SerializeToString())
        response = await client.post("/api/v1/read", data=body, headers=READ_HEADERS)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-protobuf"
        bad_regex = read_body((0, 1, [Matcher.parse("a", "=", "b")]))
        message = remote_pb2.ReadRequest.FromString(snappy.decompress(bad_regex, 1 << 20))
        message.queries[0].matchers.add(type=2, name="job", value="(")
        response = await client.post(
            "/api/v1/read", data=snappy.compress(message.SerializeToString()), headers=READ_HEADERS
        )
        assert response.status == 400
        assert "RE2" in await response.text()
        garbage = await client.post("/api/v1/read", data=b"garbage", headers=READ_HEADERS)
        assert garbage.status == 400

    run(scenario)


def test_read_sample_limit() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await write(client, v1_body([UP_A, UP_B]))).status == 204
        ok = (0, 5000, [Matcher.parse("job", "=", "b")])
        assert len((await read_all(client, ok))[0]) == 1
        response = await client.post("/api/v1/read", data=read_body(ALL), headers=READ_HEADERS)
        assert response.status == 400
        assert "sample limit of 4" in await response.text()

    run(scenario, settings=Settings(read_sample_limit=4))


def test_tenants_are_isolated_by_header() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        headers = {**V1_HEADERS, "X-Scope-OrgID": "team-a"}
        assert (await write(client, v1_body([UP_A]), headers)).status == 204
        assert (await write(client, v1_body([UP_B]))).status == 204
        response = await client.post(
            "/api/v1/read", data=read_body(ALL), headers={**READ_HEADERS, "X-Scope-OrgID": "team-a"}
        )
        assert [r.series for r in read_results(await response.read())] == [[UP_A]]
        assert await read_all(client) == [[UP_B]]

    run(scenario)


class FailingStorage(RemoteStorage):
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        raise self.error

    async def process_query(self, ctx: Context, query: Query) -> AsyncIterator[TimeSeries]:
        raise self.error
        yield  # pragma: no cover


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (StorageUnavailable("database is restarting"), 503, "database is restarting"),
        (RuntimeError("secret internals"), 500, "internal server error"),
    ],
)
def test_backend_failures_are_5xx(error: Exception, status: int, text: str) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        response = await write(client, v1_body([UP_A]))
        assert response.status == status
        body = await response.text()
        assert text in body
        assert "secret" not in body
        read = await client.post("/api/v1/read", data=read_body(ALL), headers=READ_HEADERS)
        assert read.status == status

    run(scenario, storage=FailingStorage(error))


def test_health_readiness_and_metrics() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert (await client.get("/-/healthy")).status == 200
        assert (await client.get("/-/ready")).status == 200
        assert (await write(client, v1_body([UP_A, UP_B]))).status == 204
        assert (await write(client, b"junk")).status == 400
        await read_all(client)
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        values = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await response.text())
            for s in family.samples
        }
        assert values["remote_storage_written_total", (("type", "sample"),)] == 5
        assert values["remote_storage_write_requests_total", (("version", "1.0"),)] == 2
        assert values["remote_storage_write_requests_rejected_total", (("reason", "malformed"),)] == 1
        assert values["remote_storage_read_queries_total", ()] == 1
        assert values["remote_storage_series", ()] == 2
        assert values["remote_storage_sample_bytes", ()] > 0
        assert values["remote_storage_sealed_samples", ()] == 0  # two samples: nothing sealed yet
        assert values["remote_storage_http_requests_total", (("code", "204"), ("handler", "write"))] == 1
        assert values["remote_storage_http_request_duration_seconds_count", (("handler", "write"),)] == 2

    run(scenario)


def test_metadata_api() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        metadata = [
            MetricMetadata("up", MetricType.GAUGE, "Target is up.", ""),
            MetricMetadata("http_requests", MetricType.COUNTER, "Requests.", "requests"),
        ]
        assert (await write(client, v1_body([], metadata))).status == 204
        response = await client.get("/api/v1/metadata")
        assert response.status == 200
        assert await response.json() == {
            "status": "success",
            "data": {
                "http_requests": [{"type": "counter", "help": "Requests.", "unit": "requests"}],
                "up": [{"type": "gauge", "help": "Target is up.", "unit": ""}],
            },
        }
        one = await (await client.get("/api/v1/metadata", params={"metric": "up"})).json()
        assert list(one["data"]) == ["up"]
        limited = await (await client.get("/api/v1/metadata", params={"limit": "1"})).json()
        assert len(limited["data"]) == 1
        other_tenant = await client.get("/api/v1/metadata", headers={"X-Scope-OrgID": "x"})
        assert (await other_tenant.json())["data"] == {}
        assert (await client.get("/api/v1/metadata", params={"limit": "many"})).status == 400

    run(scenario)


def test_refused_requests_are_logged_at_info_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        for _ in range(13):
            assert (await write(client, b"junk")).status == 400

    with caplog.at_level(logging.INFO, logger="remote_storage.server"):
        run(scenario)
    lines = [r for r in caplog.records if r.name == "remote_storage.server" and "refused" in r.getMessage()]
    assert len(lines) == 10  # then held back for the rest of the minute
    first = lines[0]
    assert first.levelno == logging.INFO
    assert first.getMessage().startswith("write refused: invalid snappy block")
    fields = first.fields  # type: ignore[attr-defined]
    assert fields["status"] == 400
    assert fields["reason"] == "malformed"
    assert fields["tenant"] == "default"
    assert fields["bytes"] == 4
    assert fields["remote"] == "127.0.0.1"
