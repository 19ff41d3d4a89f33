"""STREAMED_XOR_CHUNKS responses, decoded by an independent decoder, equal the SAMPLES answers."""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import crc32c
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage import native
from remote_storage.backends.memory import MemoryStorage
from remote_storage.backends.sql import SQLStorage
from remote_storage.chunks import split_into_chunks
from remote_storage.config import Settings
from remote_storage.matchers import Matcher
from remote_storage.protocol import streamed
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.pb import remote_pb2, types_pb2
from remote_storage.protocol.wire import records as wire_records
from remote_storage.protocol.wire.frames import frame
from remote_storage.server import create_app
from remote_storage.storage import EncodedChunk, Histogram, Labels, RemoteStorage, TimeSeries
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, read_results, v1_body
from tests.support.xor_reference import reference_decode

STREAMED = (ResponseType.STREAMED_XOR_CHUNKS, ResponseType.SAMPLES)


def split_frames(body: bytes) -> list[tuple[int, bytes]]:
    """(declared length, message) per frame, checking CRCs without the project's decoder."""
    frames = []
    i = 0
    while i < len(body):
        length = shift = 0
        while True:
            byte = body[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        (checksum,) = struct.unpack(">I", body[i : i + 4])
        message = body[i + 4 : i + 4 + length]
        assert len(message) == length
        assert crc32c.crc32c(message) == checksum
        frames.append((length, message))
        i += 4 + length
    return frames


def population() -> list[TimeSeries]:
    series = []
    stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    for i in range(40):
        n = 10 + 37 * i  # from one chunk to many
        values = [float(j * (i + 1)) if j % 97 else stale for j in range(n)]
        labels = Labels.from_mapping({"__name__": f"m{i % 3}", "job": "j", "i": f"{i:02d}"})
        series.append(TimeSeries(labels, [1_000_000 + 15_000 * j + (j % 3) for j in range(n)], values))
    return series


def run(scenario: Any, settings: Settings | None = None, storage: RemoteStorage | None = None) -> None:
    async def main() -> None:
        backend = storage or MemoryStorage()
        app = create_app(backend, settings or Settings())
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/api/v1/write", data=v1_body(population()), headers=V1_HEADERS)
            assert response.status == 204
            if isinstance(backend, SQLStorage):
                await backend.compact(1_000_000 + 15_000 * 1000)  # most samples into chunks, the rest rows
            await scenario(client)

    asyncio.run(main())


QUERIES = [
    (0, 10**13, [Matcher.parse("__name__", "=", "m1")]),
    (1_200_000, 1_500_000, [Matcher.parse("job", "=", "j")]),  # chunks cut by the range
    (0, 10**13, [Matcher.parse("__name__", "=", "none")]),
    (0, 10**13, [Matcher.parse("i", "=~", "0.")]),
]


@pytest.mark.parametrize("backend", ["memory", "sql"])
@pytest.mark.parametrize("frame_bytes", [1_048_576, 1024])
def test_streamed_equals_samples(frame_bytes: int, backend: str, tmp_path: Path) -> None:
    storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db") if backend == "sql" else MemoryStorage()
    stored_chunks: set[bytes] = set()

    async def scenario(client: TestClient[Any, Any]) -> None:
        samples = await client.post("/api/v1/read", data=read_body(*QUERIES), headers=READ_HEADERS)
        expected = [r.series for r in read_results(await samples.read())]
        response = await client.post(
            "/api/v1/read", data=read_body(*QUERIES, accepted=STREAMED), headers=READ_HEADERS
        )
        assert response.status == 200
        assert response.headers["Content-Type"] == streamed.CONTENT_TYPE
        assert "Content-Encoding" not in response.headers
        body = await response.read()
        got: list[list[TimeSeries]] = [[] for _ in QUERIES]
        last_index = 0
        for length, raw in split_frames(body):
            [message] = streamed.decode_frames(frame(raw))
            assert len(message.chunked_series) == 1  # one series per frame
            assert message.query_index >= last_index  # queries in order
            last_index = message.query_index
            [series] = message.chunked_series
            labels = Labels((label.name, label.value) for label in series.labels)
            budget_exceeded_by_one_chunk = length - max(len(c.data) for c in series.chunks) - 64
            assert budget_exceeded_by_one_chunk <= frame_bytes
            start, end = QUERIES[message.query_index][:2]
            timestamps: list[int] = []
            bits: list[int] = []
            for chunk in series.chunks:
                assert chunk.type == 1  # XOR
                stored_chunks.add(chunk.data)
                ts, vs = reference_decode(chunk.data)
                assert (chunk.min_time_ms, chunk.max_time_ms) == (ts[0], ts[-1])
                assert start <= ts[0] and ts[-1] <= end  # chunks sticking out of the range are trimmed
                for t, v in zip(ts, vs, strict=True):
                    if start <= t <= end:
                        timestamps.append(t)
                        bits.append(v)
            values = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
            found = got[message.query_index]
            if found and found[-1].labels == labels:  # a long series continues in the next frame
                found[-1] = TimeSeries(
                    labels, [*found[-1].timestamps, *timestamps], [*found[-1].values, *values]
                )
            else:
                assert not found or found[-1].labels < labels  # sorted by labels
                found.append(TimeSeries(labels, timestamps, values))
        assert got == expected
        if frame_bytes == 1024:
            assert len(split_frames(body)) > sum(len(e) for e in expected)  # long series were split
        if backend == "sql":  # compacted chunks went out as stored, without re-encoding
            with sqlite3.connect(tmp_path / "d.db") as conn:
                in_db = {bytes(row[0]) for row in conn.execute("SELECT data FROM rs_chunks")}
            assert in_db & stored_chunks

    run(scenario, Settings(read_max_bytes_in_frame=frame_bytes), storage)


def test_histogram_only_series_are_left_out_of_streams() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        h = Histogram(timestamp=5, count=1, sum=1.0, schema=0, zero_threshold=0.0, zero_count=0)
        histogram = TimeSeries(Labels.from_mapping({"__name__": "h"}), histograms=[h])
        await client.post("/api/v1/write", data=v1_body([histogram]), headers=V1_HEADERS)
        query = (0, 10, [Matcher.parse("__name__", "=", "h")])
        response = await client.post(
            "/api/v1/read", data=read_body(query, accepted=STREAMED), headers=READ_HEADERS
        )
        assert response.status == 200
        assert await response.read() == b""

    run(scenario)


# -- the frames' bytes ---------------------------------------------------------------


XOR = types_pb2.Chunk.XOR


def protobuf_frames(
    query_index: int, labels: Labels, chunks: Sequence[EncodedChunk], max_frame_bytes: int
) -> list[bytes]:
    """The frames as they were built with protobuf message objects: the reference for the bytes."""
    template = remote_pb2.ChunkedReadResponse(query_index=query_index)
    series_template = template.chunked_series.add()
    for name, value in labels:
        series_template.labels.add(name=name, value=value)
    budget = max_frame_bytes - series_template.ByteSize()
    frames = []
    start = 0
    while start < len(chunks):
        message = remote_pb2.ChunkedReadResponse()
        message.CopyFrom(template)
        out = message.chunked_series[0]
        used = 0
        while start < len(chunks) and (used < budget or used == 0):
            chunk = chunks[start]
            out.chunks.add(min_time_ms=chunk.min_time, max_time_ms=chunk.max_time, type=XOR, data=chunk.data)
            used += len(chunk.data) + 32
            start += 1
        data = message.SerializeToString()
        frames.append(encode_length(len(data)) + crc32c.crc32c(data).to_bytes(4, "big") + data)
    return frames


def encode_length(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


needs_c = pytest.mark.skipif(
    native.wire is None, reason="the C extension remote_storage.protocol.wire._wire is not built"
)


@pytest.fixture(scope="module", params=["python", pytest.param("c", marks=needs_c)])
def records(request: pytest.FixtureRequest) -> Iterator[str]:
    """The record encoders of the frames in each implementation in turn."""
    python = request.param == "python"
    with pytest.MonkeyPatch.context() as patch:
        twin = "_py_" if python else "_c_"
        for name in ("encode_labels", "encode_chunk_records"):
            patch.setattr(wire_records, name, getattr(wire_records, twin + name))
        yield request.param


INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=10) | st.sampled_from(["__name__", "ünï", "x" * 200])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([0, 1, 7, 2**40, -1]),
    st.lists(st.tuples(TEXT, TEXT), max_size=6).map(lambda pairs: Labels(sorted(pairs))),
    st.lists(st.builds(EncodedChunk, INT64, INT64, st.binary(max_size=700)), max_size=8),
    st.sampled_from([1, 64, 500, 1024, 1_048_576]),
)
def test_frames_are_the_bytes_protobuf_gave(
    records: str, query_index: int, labels: Labels, chunks: list[EncodedChunk], max_frame_bytes: int
) -> None:
    expected = protobuf_frames(query_index, labels, chunks, max_frame_bytes)
    assert list(streamed.encode_series_frames(query_index, labels, chunks, max_frame_bytes)) == expected


def test_chunks_of_samples_are_cut_as_before() -> None:
    stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    for n in (0, 1, 119, 120, 121, 500):
        timestamps = [-(10**12) + 15_000 * i for i in range(n)]
        values = [stale if i % 7 == 0 else i * 0.25 for i in range(n)]
        cut = split_into_chunks(timestamps, values)
        expected = [EncodedChunk(c.min_time, c.max_time, c.data) for c in cut]
        labels = Labels((("__name__", "x"),))
        assert streamed.chunks_of(TimeSeries(labels, timestamps, values), -(2**63), 2**63 - 1) == expected
