"""Prometheus' label and series APIs over the stored data: shapes, parameters, errors, tenants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from remote_storage.backends.memory import MemoryStorage
from remote_storage.browse import SeriesIndex
from remote_storage.server import create_app
from remote_storage.storage import RemoteStorage
from tests.support.wire import V1_HEADERS, series, v1_body

DATA = [
    series([1000, 2000], [1.0, 1.0], __name__="up", job="api", instance="a"),
    series([1000], [0.0], __name__="up", job="db", instance="b"),
    series([5000], [3.0], __name__="requests_total", job="api", code="200"),
    series([9000], [7.0], __name__="temperature", zone="eu"),
]

Scenario = Callable[[TestClient[Any, Any]], Awaitable[None]]


def run(scenario: Scenario, storage: RemoteStorage | None = None) -> None:
    async def main() -> None:
        async with TestClient(TestServer(create_app(storage or MemoryStorage()))) as client:
            response = await client.post("/api/v1/write", data=v1_body(DATA), headers=V1_HEADERS)
            assert response.status == 204
            await scenario(client)

    asyncio.run(main())


async def get(client: TestClient[Any, Any], path: str, **params: Any) -> tuple[int, Any]:
    query = [(k.replace("match", "match[]"), v) for k, values in params.items() for v in _listed(values)]
    response = await client.get(path, params=query)
    return response.status, await response.json()


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_labels_values_and_series() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        assert await get(client, "/api/v1/labels") == (
            200,
            {"status": "success", "data": ["__name__", "code", "instance", "job", "zone"]},
        )
        assert await get(client, "/api/v1/labels", match="up") == (
            200,
            {"status": "success", "data": ["__name__", "instance", "job"]},
        )
        assert await get(client, "/api/v1/label/__name__/values") == (
            200,
            {"status": "success", "data": ["requests_total", "temperature", "up"]},
        )
        assert await get(client, "/api/v1/label/job/values", match=['{job=~"a.*"}', "temperature"]) == (
            200,
            {"status": "success", "data": ["api"]},
        )
        status, body = await get(client, "/api/v1/series", match=['{job="api"}', "temperature"])
        assert status == 200
        assert body["data"] == [
            {"__name__": "requests_total", "code": "200", "job": "api"},
            {"__name__": "temperature", "zone": "eu"},
            {"__name__": "up", "instance": "a", "job": "api"},
        ]

    run(scenario)


def test_time_range_limits_and_form_posts() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        # seconds: 4 to 10 holds requests_total (5 s) and temperature (9 s) only
        status, body = await get(client, "/api/v1/series", match='{__name__=~".+"}', start="4", end="10")
        assert status == 200
        assert [s["__name__"] for s in body["data"]] == ["requests_total", "temperature"]
        status, body = await get(
            client,
            "/api/v1/label/__name__/values",
            start="1970-01-01T00:00:08Z",
            end="1970-01-01T00:00:09.5Z",
        )
        assert body["data"] == ["temperature"]
        status, body = await get(client, "/api/v1/label/__name__/values", limit="2")
        assert status == 200
        assert body == {
            "status": "success",
            "data": ["requests_total", "temperature"],
            "warnings": ["results truncated due to limit"],
        }
        response = await client.post("/api/v1/series", data={"match[]": "up", "end": "1.5"})
        assert (await response.json())["data"] == [
            {"__name__": "up", "instance": "a", "job": "api"},
            {"__name__": "up", "instance": "b", "job": "db"},
        ]

    run(scenario)


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("/api/v1/series", {}, "no match[] parameter provided"),
        ("/api/v1/series", {"match": 'up{job="a"'}, "invalid series selector"),
        ("/api/v1/labels", {"match": '{job=""}'}, "at least one non-empty matcher"),
        ("/api/v1/labels", {"start": "yesterday"}, 'invalid parameter "start"'),
        ("/api/v1/labels", {"start": "10", "end": "5"}, "end timestamp must not be before start time"),
        ("/api/v1/labels", {"limit": "-1"}, "limit must be non-negative"),
    ],
)
def test_bad_parameters_get_prometheus_errors(path: str, params: dict[str, str], error: str) -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        status, body = await get(client, path, **params)
        assert status == 400
        assert body["status"] == "error"
        assert body["errorType"] == "bad_data"
        assert error in body["error"]

    run(scenario)


def test_tenants_see_only_their_series() -> None:
    async def scenario(client: TestClient[Any, Any]) -> None:
        other = v1_body([series([1000], [1.0], __name__="secret", team="b")])
        headers = {**V1_HEADERS, "X-Scope-OrgID": "team-b"}
        assert (await client.post("/api/v1/write", data=other, headers=headers)).status == 204
        _, body = await get(client, "/api/v1/label/__name__/values")
        assert "secret" not in body["data"]
        response = await client.get("/api/v1/label/__name__/values", headers={"X-Scope-OrgID": "team-b"})
        assert (await response.json())["data"] == ["secret"]

    run(scenario)


def test_a_backend_without_an_index_is_browsed_through_its_queries() -> None:
    storage = MemoryStorage()

    class QueriesOnly(RemoteStorage):
        """Only the two required methods: the APIs fall back to process_query."""

        async def write(self, ctx: Any, request: Any) -> None:
            await storage.write(ctx, request)

        def process_query(self, ctx: Any, query: Any) -> Any:
            return storage.process_query(ctx, query)

    async def scenario(client: TestClient[Any, Any]) -> None:
        _, body = await get(client, "/api/v1/labels", match="up")
        assert body["data"] == ["__name__", "instance", "job"]

    backend = QueriesOnly()
    assert not isinstance(backend, SeriesIndex)
    run(scenario, backend)


@pytest.mark.parametrize("retention", ["", "?retention=3650d"])
def test_sql_backend_lists_series_from_its_index(tmp_path: Any, retention: str) -> None:
    from remote_storage.backends.sql import SQLStorage

    storage = SQLStorage.from_url(f"sqlite:///{tmp_path / 'browse.db'}{retention}")
    assert isinstance(storage, SeriesIndex)

    async def scenario(client: TestClient[Any, Any]) -> None:
        _, body = await get(client, "/api/v1/label/__name__/values")
        assert body["data"] == ["requests_total", "temperature", "up"]
        _, body = await get(client, "/api/v1/series", match='{__name__=~".+"}', start="4", end="10")
        assert [s["__name__"] for s in body["data"]] == ["requests_total", "temperature"]
        _, body = await get(client, "/api/v1/labels", match='{job="db"}')
        assert body["data"] == ["__name__", "instance", "job"]

    run(scenario, storage)
