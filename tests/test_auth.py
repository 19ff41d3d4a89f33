"""Authentication: the config file, refusals at start, the checks, the cache, tenant binding, open routes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from remote_storage import auth
from remote_storage.auth import (
    Authenticator,
    AuthMetrics,
    Principal,
    hash_password,
    load_auth,
    parse_auth_config,
)
from remote_storage.backends.memory import MemoryStorage
from remote_storage.config import ConfigError, Settings
from remote_storage.errors import Unauthorized
from remote_storage.instrument import Registry
from remote_storage.matchers import Matcher
from remote_storage.server import create_app
from remote_storage.storage import Context, WriteRequest
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, read_results, series, v1_body

COST = 4  # the cheapest bcrypt cost: the tests check behaviour, not strength
PASSWORD = "correct horse"
TOKEN = "tok-0123456789abcdef0123456789abcdef"
ADMIN_TOKEN = "tok-admin-fedcba9876543210fedcba98765"
PASSWORD_HASH = hash_password(PASSWORD.encode(), COST)
ALL = (0, 10**12, [Matcher.parse("__name__", "=~", ".+")])


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


CONFIG = f"""
[users.prometheus]
password_hash = "{PASSWORD_HASH}"
tenant = "team-a"

[users.ops]
password_hash = "{PASSWORD_HASH}"

[tokens.ci]
sha256 = "{sha256(TOKEN)}"
tenant = "team-a"

[tokens.admin]
sha256 = "{sha256(ADMIN_TOKEN)}"
"""


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the config file ----------------------------------------------------------------------------


def test_config_is_parsed() -> None:
    config = parse_auth_config(CONFIG)
    assert sorted(config.users) == ["ops", "prometheus"]
    assert config.users["prometheus"].tenant == "team-a"
    assert config.users["ops"].tenant is None
    assert [(t.name, t.tenant) for t in config.tokens] == [("ci", "team-a"), ("admin", None)]
    assert config.tokens[0].digest == hashlib.sha256(TOKEN.encode()).digest()
    assert config.protect_metrics is True
    assert config.mode == "basic+bearer"
    assert config.describe() == "basic+bearer (2 users, 2 tokens), /metrics protected"
    only_token = parse_auth_config(f'protect_metrics = false\n[tokens.x]\nsha256 = "{sha256("t")}"\n')
    assert only_token.mode == "bearer"
    assert only_token.describe() == "bearer (1 token), /metrics open"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[users.a]\npassword = "hunter2"\n', "[users.a] has the password in plain text"),
        ('[users.a]\npassword_hash = "hunter2"\n', "password_hash of [users.a] must be a bcrypt hash"),
        ('[users.a]\npassword_hash = "$2b$12$short"\n', "must be a bcrypt hash"),
        ('[tokens.t]\ntoken = "abc"\n', "[tokens.t] has the token in plain text; store its hash as sha256"),
        ('[tokens.t]\nsha256 = "abc"\n', "sha256 of [tokens.t] must be 64 hex digits"),
        (f'[tokens.t]\nsha256 = "{sha256("x")}"\nscope = "all"\n', "unknown key 'scope' in [tokens.t]"),
        (f'[tokens.t]\nsha256 = "{sha256("x")}"\ntenant = ""\n', "tenant of [tokens.t] must be a non-empty"),
        (
            f'[users."a:b"]\npassword_hash = "{PASSWORD_HASH}"\n',
            "user name 'a:b' must be non-empty and without",
        ),
        (f'[tokens.a]\nsha256 = "{sha256("x")}"\n[tokens.b]\nsha256 = "{sha256("x")}"\n', "same sha256"),
        ("protect_metrics = 1\n[tokens.t]\nsha256 = 'x'\n", "protect_metrics must be true or false"),
        ("users = 3\n", "users must be a table"),
        ("colour = 'blue'\n", "unknown key 'colour' in the top level"),
        ("protect_metrics = true\n", "defines no [users.NAME] or [tokens.NAME]"),
        ("[users.a\n", "is not valid TOML"),
    ],
)
def test_unusable_configs_are_refused_with_one_line_naming_the_flag(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_auth_config(text, "auth.toml")
    text_of_error = str(caught.value)
    assert text_of_error.startswith("--auth-config: "), text_of_error
    assert message in text_of_error
    assert "\n" not in text_of_error


def test_missing_or_unreadable_file_is_refused(tmp_path: Path) -> None:
    assert load_auth(Settings()) is None
    with pytest.raises(ConfigError, match=r"^--auth-config: cannot read .*nope\.toml: No such file"):
        load_auth(Settings(auth_config=str(tmp_path / "nope.toml")))
    with pytest.raises(ConfigError, match=r"^--auth-config: cannot read .*: Is a directory"):
        load_auth(Settings(auth_config=str(tmp_path)))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"^--auth-config: .*binary\.toml is not UTF-8 text$"):
        load_auth(Settings(auth_config=str(binary)))


def test_serve_refuses_a_bad_auth_config_at_start(tmp_path: Path) -> None:
    config = tmp_path / "auth.toml"
    config.write_text('[users.a]\npassword = "hunter2"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORAGE_")}
    argv = ["serve", "--listen", "127.0.0.1:0", "--storage", "memory://", "--auth-config", str(config)]
    result = subprocess.run(
        [sys.executable, "-m", "remote_storage", *argv], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert "--auth-config: " in result.stderr
    assert "has the password in plain text" in result.stderr


def test_hash_password_command() -> None:
    def run(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "remote_storage", "hash-password", *args],
            input=stdin,
            capture_output=True,
            timeout=60,
        )

    result = run(b"s3cret pass\n", "--cost", "4")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith(b"$2b$04$")
    assert bcrypt.checkpw(b"s3cret pass", printed)  # the newline is not part of the password
    parse_auth_config(f'[users.u]\npassword_hash = "{printed.decode()}"\n')  # accepted as it is printed
    too_long = run(b"x" * 73 + b"\n")
    assert too_long.returncode == 2
    assert b"bcrypt reads at most 72" in too_long.stderr
    assert run(b"\n").returncode == 2


# --- the checks ---------------------------------------------------------------------------------


def test_authenticator_accepts_valid_credentials_and_nothing_else() -> None:
    authenticator = Authenticator(parse_auth_config(CONFIG))

    async def check(header: str | None) -> Principal | str:
        try:
            return await authenticator.authenticate(header)
        except Unauthorized as exc:
            return exc.reason

    def encoded(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    async def scenario() -> None:
        assert await check(basic("prometheus", PASSWORD)["Authorization"]) == Principal(
            "user:prometheus", "team-a"
        )
        assert await check(basic("ops", PASSWORD)["Authorization"]) == Principal("user:ops", None)
        assert await check(f"bearer  {TOKEN} ") == Principal("token:ci", "team-a")
        assert await check(f"Bearer {ADMIN_TOKEN}") == Principal("token:admin", None)
        assert await check(None) == "missing"
        assert await check("") == "missing"
        for wrong in (
            basic("prometheus", PASSWORD + "!")["Authorization"],
            basic("nobody", PASSWORD)["Authorization"],
            encoded(f"prometheus{PASSWORD}"),  # no colon
            encoded("prometheus:" + "x" * 100),  # longer than bcrypt reads
            "Basic !!!not-base64",
            f"Bearer {TOKEN}x",
            f"Bearer {sha256(TOKEN)}",  # the stored digest is not the token
            f"Token {TOKEN}",
            f"Digest {TOKEN}",
        ):
            assert await check(wrong) == "invalid", wrong

    asyncio.run(scenario())


def test_tokens_are_compared_in_constant_time_against_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_auth_config(CONFIG)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    principal = asyncio.run(Authenticator(config).authenticate(f"Bearer {TOKEN}"))
    assert principal.name == "token:ci"
    digest = hashlib.sha256(TOKEN.encode()).digest()
    # the first token matched, the second was still compared: no early exit
    assert compared == [(digest, token.digest) for token in config.tokens]


def counting_authenticator(text: str) -> tuple[Authenticator, Callable[[], float | None]]:
    registry = Registry()
    authenticator = Authenticator(parse_auth_config(text), AuthMetrics(registry))
    return authenticator, lambda: registry.get_sample_value("remote_storage_auth_bcrypt_checks_total")


def test_successful_password_checks_are_cached_and_shared() -> None:
    authenticator, checks = counting_authenticator(CONFIG)
    good = basic("prometheus", PASSWORD)["Authorization"]
    wrong = basic("prometheus", "nope")["Authorization"]

    async def scenario() -> None:
        # Concurrent requests with the same new credentials share one check.
        principals = await asyncio.gather(*(authenticator.authenticate(good) for _ in range(5)))
        assert {p.name for p in principals} == {"user:prometheus"}
        assert checks() == 1
        for _ in range(20):
            await authenticator.authenticate(good)
        assert checks() == 1
        # Failures are not cached: each costs a check (and is refused each time).
        for expected in (2, 3):
            with pytest.raises(Unauthorized):
                await authenticator.authenticate(wrong)
            assert checks() == expected
        # An unknown user costs a check too, so its answer takes as long as a wrong password's.
        with pytest.raises(Unauthorized):
            await authenticator.authenticate(basic("nobody", PASSWORD)["Authorization"])
        assert checks() == 4
        # Another user with the same password: an entry of its own.
        await authenticator.authenticate(basic("ops", PASSWORD)["Authorization"])
        assert checks() == 5

    asyncio.run(scenario())


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "CACHE_SIZE", 2)
    users = "".join(f'[users.{name}]\npassword_hash = "{PASSWORD_HASH}"\n' for name in "abc")
    authenticator, checks = counting_authenticator(users)

    async def scenario() -> None:
        for name, expected_checks in [("a", 1), ("b", 2), ("a", 2), ("c", 3), ("a", 3), ("b", 4)]:
            principal = await authenticator.authenticate(basic(name, PASSWORD)["Authorization"])
            assert principal.name == f"user:{name}"
            assert checks() == expected_checks, name  # b was evicted by c (a had been used since)

    asyncio.run(scenario())


# --- over HTTP ----------------------------------------------------------------------------------


class RecordingStorage(MemoryStorage):
    """The memory backend, remembering the context of every write."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[Context] = []

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        self.contexts.append(ctx)
        await super().write(ctx, request)


Client = TestClient[Any, Any]


def run(tmp_path: Path, text: str, scenario: Callable[[Client], Awaitable[None]], **settings: Any) -> None:
    config = tmp_path / "auth.toml"
    config.write_text(text)

    async def main() -> None:
        app = create_app(RecordingStorage(), Settings(auth_config=str(config), **settings))
        async with TestClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(main())


async def metric(client: Client, name: str, headers: dict[str, str]) -> float:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200
    for line in (await response.text()).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not on /metrics")


BODY = v1_body([series([1000], [1.0], __name__="up", job="a")])


def test_requests_without_valid_credentials_get_401_that_reveals_nothing(tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        bodies = set()
        for headers in (
            {},
            basic("prometheus", "wrong"),
            basic("nobody", PASSWORD),
            bearer("wrong"),
            {"Authorization": "Negotiate abc"},
        ):
            response = await client.post("/api/v1/write", data=BODY, headers={**V1_HEADERS, **headers})
            assert response.status == 401, headers
            assert response.headers.getall("WWW-Authenticate") == [
                'Basic realm="remote-storage", charset="UTF-8"',
                'Bearer realm="remote-storage"',
            ]
            bodies.add(await response.text())
        assert len(bodies) == 1, bodies  # the same answer whatever was wrong
        for path in ("/api/v1/read", "/api/v1/metadata", "/metrics", "/no/such/route"):
            response = await client.get(path)
            assert response.status == 401, path
        admin = bearer(ADMIN_TOKEN)
        rejected = "remote_storage_auth_rejected_requests_total"
        assert await metric(client, rejected + '{reason="missing"}', admin) == 5
        assert await metric(client, rejected + '{reason="invalid"}', admin) == 4
        assert await metric(client, 'remote_storage_written_total{type="sample"}', admin) == 0

    run(tmp_path, CONFIG, scenario)


def test_health_checks_stay_open_and_metrics_can_be_opened(tmp_path: Path) -> None:
    async def protected(client: Client) -> None:
        for path in ("/-/healthy", "/-/ready"):
            assert (await client.get(path)).status == 200, path
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers=basic("ops", PASSWORD))).status == 200

    async def opened(client: Client) -> None:
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/-/ready")).status == 200
        assert (await client.get("/api/v1/metadata")).status == 401

    run(tmp_path, CONFIG, protected)
    run(tmp_path, "protect_metrics = false\n" + CONFIG, opened)


def test_bound_credentials_choose_the_tenant_and_forged_headers_get_403(tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        async def write(headers: dict[str, str], value: float) -> int:
            body = v1_body([series([1000 * int(value)], [value], __name__="up", job="a")])
            response = await client.post("/api/v1/write", data=body, headers={**V1_HEADERS, **headers})
            return response.status

        async def read(headers: dict[str, str]) -> list[float]:
            response = await client.post(
                "/api/v1/read", data=read_body(ALL), headers={**READ_HEADERS, **headers}
            )
            assert response.status == 200, await response.text()
            [result] = read_results(await response.read())
            return [v for s in result.series for v in s.values]

        prometheus = basic("prometheus", PASSWORD)
        # no header, or the bound tenant's: stored in team-a
        assert await write(prometheus, 1.0) == 204
        assert await write({**prometheus, "X-Scope-OrgID": "team-a"}, 2.0) == 204
        # another tenant named: refused, nothing stored
        response = await client.post(
            "/api/v1/write", data=BODY, headers={**V1_HEADERS, **prometheus, "X-Scope-OrgID": "team-b"}
        )
        assert response.status == 403
        assert "bound to tenant 'team-a'" in await response.text()
        assert await write({**bearer(TOKEN), "X-Scope-OrgID": "team-b"}, 3.0) == 403
        # unbound credentials pick the tenant with the header, as without authentication
        assert await write({**bearer(ADMIN_TOKEN), "X-Scope-OrgID": "team-b"}, 4.0) == 204
        assert await read(bearer(ADMIN_TOKEN)) == []  # the default tenant
        assert await read({**bearer(ADMIN_TOKEN), "X-Scope-OrgID": "team-a"}) == [1.0, 2.0]
        assert await read({**bearer(ADMIN_TOKEN), "X-Scope-OrgID": "team-b"}) == [4.0]
        assert await read(bearer(TOKEN)) == [1.0, 2.0]  # the bound token reads its own tenant
        response = await client.post(
            "/api/v1/read",
            data=read_body(ALL),
            headers={**READ_HEADERS, **bearer(TOKEN), "X-Scope-OrgID": "x"},
        )
        assert response.status == 403
        rejected = 'remote_storage_auth_rejected_requests_total{reason="tenant"}'
        assert await metric(client, rejected, bearer(ADMIN_TOKEN)) == 3

    run(tmp_path, CONFIG, scenario)


def test_the_backend_does_not_see_the_credentials(tmp_path: Path) -> None:
    storage = RecordingStorage()
    config = tmp_path / "auth.toml"
    config.write_text(CONFIG)

    async def main() -> None:
        app = create_app(storage, Settings(auth_config=str(config)))
        async with TestClient(TestServer(app)) as client:
            headers = {**V1_HEADERS, **basic("prometheus", PASSWORD), "X-Custom": "kept"}
            assert (await client.post("/api/v1/write", data=BODY, headers=headers)).status == 204

    asyncio.run(main())
    [ctx] = storage.contexts
    assert ctx.tenant == "team-a"
    assert ctx.headers["x-custom"] == "kept"
    assert "authorization" not in ctx.headers


def test_without_auth_config_everything_stays_open() -> None:
    async def main() -> None:
        app = create_app(MemoryStorage(), Settings())
        async with TestClient(TestServer(app)) as client:
            assert (await client.post("/api/v1/write", data=BODY, headers=V1_HEADERS)).status == 204
            assert (await client.get("/metrics")).status == 200
            response = await client.get("/metrics")
            assert "remote_storage_auth" not in await response.text()

    asyncio.run(main())


def test_the_readme_example_config_works() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Authentication and TLS", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_auth_config(example, "README.md")
    assert config.describe() == "basic+bearer (1 user, 1 token), /metrics protected"
    authenticator = Authenticator(config)

    async def scenario() -> None:
        user = await authenticator.authenticate(basic("prometheus", "change-me")["Authorization"])
        assert user == Principal("user:prometheus", "team-a")
        token = await authenticator.authenticate("Bearer example-token-change-me")
        assert token == Principal("token:grafana", None)

    asyncio.run(scenario())
