"""The README's example backend works as shown, and every serve flag is documented."""

from __future__ import annotations

import asyncio
import re
import struct
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from remote_storage.config import _OPTIONS, env_name
from remote_storage.matchers import Matcher
from remote_storage.server import create_app
from remote_storage.storage import RemoteStorage
from tests.support.net import free_port, wait_http_ok
from tests.support.procs import Processes
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, read_results, series, v1_body

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def example(name: str) -> str:
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", README, re.S)
    assert match, f"example {name!r} not found in README.md"
    return match.group(1)


def test_custom_backend_example_is_short_and_works() -> None:
    source = example("custom-backend")
    assert len(source.splitlines()) < 40
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(source, "README.md", "exec"), namespace)
    storage = namespace["DictStorage"]()
    assert isinstance(storage, RemoteStorage)

    up_a = series([1000, 2000], [1.0, 0.0], __name__="up", job="a")
    up_b = series([1000], [1.0], __name__="up", job="b")
    stale = series([3000], [struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]], __name__="x")

    async def scenario() -> None:
        async with TestClient(TestServer(create_app(storage))) as client:
            response = await client.post(
                "/api/v1/write", data=v1_body([up_a, up_b, stale]), headers=V1_HEADERS
            )
            assert response.status == 204
            body = read_body(
                (0, 5000, [Matcher.parse("__name__", "=", "up")]),
                (1500, 5000, [Matcher.parse("job", "!=", "b")]),
            )
            response = await client.post("/api/v1/read", data=body, headers=READ_HEADERS)
            assert response.status == 200
            first, second = (r.series for r in read_results(await response.read()))
            assert first == [up_a, up_b]
            assert second == [series([2000], [0.0], __name__="up", job="a"), stale]

    asyncio.run(scenario())


def test_run_serves_the_example_and_logs_its_class(processes: Processes, tmp_path: Path) -> None:
    """``run(DictStorage())`` names the object it serves, not the default ``--storage`` URL."""
    port = free_port()
    script = tmp_path / "dict_storage.py"
    source = example("custom-backend").replace(
        "run(DictStorage())", f'run(DictStorage(), Settings(listen="127.0.0.1:{port}"))'
    )
    script.write_text("from remote_storage.config import Settings\n" + source)
    served = processes.start("dict-storage", [sys.executable, str(script)])
    wait_http_ok(f"http://127.0.0.1:{port}/-/ready", 30, alive=served.check_alive)
    assert served.stop() == 0
    log = served.log_text()
    assert f"listening on http://127.0.0.1:{port} with storage DictStorage" in log  # its describe()
    assert "sqlite" not in log


def test_every_serve_flag_is_documented() -> None:
    for flag in _OPTIONS:
        assert f"`{flag}`" in README, f"{flag} is missing from the README's configuration table"
    assert env_name("--max-request-bytes") in README
