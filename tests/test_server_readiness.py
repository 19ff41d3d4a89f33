"""``GET /-/ready`` follows the backend's ``unavailable()`` hook: 503 with the reason, 200 without."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from remote_storage.backends.memory import MemoryStorage
from remote_storage.config import Settings
from remote_storage.server import create_app


class SwitchedStorage(MemoryStorage):
    """The memory backend, unavailable whenever ``reason`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def unavailable(self) -> str | None:
        return self.reason


def test_ready_is_503_with_the_reason_while_the_backend_cannot_take_writes() -> None:
    storage = SwitchedStorage()
    assert MemoryStorage().unavailable() is None  # the default: always ready once open

    async def main() -> None:
        async with TestClient(TestServer(create_app(storage, Settings()))) as client:
            assert (await client.get("/-/ready")).status == 200
            storage.reason = "database db:5432 is unreachable (connection refused)"
            response = await client.get("/-/ready")
            assert response.status == 503
            assert await response.text() == (
                "Service Unavailable: database db:5432 is unreachable (connection refused)\n"
            )
            assert (await client.get("/-/healthy")).status == 200  # the process itself is fine
            storage.reason = None
            assert (await client.get("/-/ready")).status == 200

    asyncio.run(main())
