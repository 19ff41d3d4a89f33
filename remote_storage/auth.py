"""Authentication: HTTP basic auth (bcrypt hashes) and bearer tokens (sha256), with tenant binding.

``--auth-config FILE`` names a TOML file::

    # Optional; true (the default) asks for credentials on /metrics too.
    protect_metrics = true

    [users.prometheus]                      # HTTP basic auth, user "prometheus"
    password_hash = "$2b$12$..."            # bcrypt: `remote-storage hash-password`
    tenant = "team-a"                       # optional: bind the user to a tenant

    [tokens.grafana]                        # a bearer token; the name is for people only
    sha256 = "8d9c...e1"                    # hex sha256 of the token: `printf %s "$TOKEN" | sha256sum`

Every route asks for credentials except ``/-/healthy`` and ``/-/ready`` (and
``/metrics`` when ``protect_metrics = false``). A request without valid
credentials gets 401 with a ``WWW-Authenticate`` challenge and a body that
never says which part was wrong.

Passwords are stored only as bcrypt hashes; a plain ``password`` is refused
at start. bcrypt is slow on purpose (about 0.1-0.3 s a check), and
Prometheus sends its basic-auth credentials with every request, so a check
runs in a thread (never on the event loop, at most :data:`BCRYPT_CONCURRENCY`
at once) and a success is remembered: the cache holds an HMAC of the
credentials under a key drawn at start (never the password), at most
:data:`CACHE_SIZE` entries, least recently used evicted. Concurrent requests
with the same new credentials share one check.

Bearer tokens are stored as their sha256 digest: tokens are long random
strings, so a fast hash is enough (a slow one only helps guessable secrets
such as passwords), and a check costs microseconds. The digest of the
presented token is compared with every configured one in constant time
(:func:`hmac.compare_digest`).

A user or token with ``tenant`` is bound to it: its requests belong to that
tenant; a tenant header naming another tenant gets 403, the same tenant or no
header is fine. Unbound credentials choose the tenant with the header, as
without authentication.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import tomllib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from remote_storage.config import ConfigError, Settings
from remote_storage.errors import RemoteStorageError, TenantForbidden, Unauthorized
from remote_storage.instrument import Counter, Registry

__all__ = [
    "OPEN_PATHS",
    "AuthConfig",
    "Authenticator",
    "Principal",
    "Token",
    "User",
    "auth_middleware",
    "bound_tenant",
    "hash_password",
    "load_auth",
    "parse_auth_config",
]

FLAG = "--auth-config"
#: Routes that never ask for credentials: load balancers and orchestrators probe them.
OPEN_PATHS = frozenset({"/-/healthy", "/-/ready"})
METRICS_PATH = "/metrics"
REALM = "remote-storage"
#: Successful basic-auth checks remembered (one entry per distinct user and password).
CACHE_SIZE = 1024
#: bcrypt checks running at once; more wait, so failed guesses cannot take every thread.
BCRYPT_CONCURRENCY = 2
#: Cost factor of ``remote-storage hash-password`` (2**12 rounds: about 0.2 s a check).
DEFAULT_BCRYPT_COST = 12
#: bcrypt reads at most this many bytes of a password.
BCRYPT_MAX_PASSWORD_BYTES = 72

_BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Principal:
    """Who sent a request: ``user:NAME`` or ``token:NAME``, and the tenant it is bound to, if any."""

    name: str
    tenant: str | None


@dataclass(frozen=True)
class User:
    """A basic-auth user: its bcrypt hash and optional tenant."""

    name: str
    password_hash: bytes
    tenant: str | None = None


@dataclass(frozen=True)
class Token:
    """A bearer token, known by the sha256 digest of its text."""

    name: str
    digest: bytes
    tenant: str | None = None


@dataclass(frozen=True)
class AuthConfig:
    """The parsed ``--auth-config`` file; at least one user or token."""

    users: Mapping[str, User]
    tokens: tuple[Token, ...]
    protect_metrics: bool = True

    @property
    def mode(self) -> str:
        """``basic``, ``bearer`` or ``basic+bearer``: the schemes clients may use."""
        schemes = [name for name, used in (("basic", self.users), ("bearer", self.tokens)) if used]
        return "+".join(schemes)

    def describe(self) -> str:
        """One phrase for the start-up log, e.g. ``basic (2 users), /metrics protected``."""
        counts = []
        if self.users:
            counts.append(f"{len(self.users)} user{'s' * (len(self.users) != 1)}")
        if self.tokens:
            counts.append(f"{len(self.tokens)} token{'s' * (len(self.tokens) != 1)}")
        metrics = "protected" if self.protect_metrics else "open"
        return f"{self.mode} ({', '.join(counts)}), /metrics {metrics}"


def load_auth(settings: Settings) -> AuthConfig | None:
    """The auth config named by ``--auth-config``, or None when unset; ConfigError when unusable."""
    if not settings.auth_config:
        return None
    path = settings.auth_config
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ConfigError(f"{FLAG}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{FLAG}: {path} is not UTF-8 text") from None
    return parse_auth_config(text, path)


def parse_auth_config(text: str, source: str = "<auth config>") -> AuthConfig:
    """Parse the TOML text of an auth config; every problem is a one-line ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{FLAG}: {source} is not valid TOML: {exc}") from None
    _only_keys(data, {"protect_metrics", "users", "tokens"}, source, "the top level")
    protect_metrics = data.get("protect_metrics", True)
    if not isinstance(protect_metrics, bool):
        raise ConfigError(f"{FLAG}: {source}: protect_metrics must be true or false")
    users = {name: _user(name, entry, source) for name, entry in _table(data, "users", source).items()}
    tokens = tuple(_token(name, entry, source) for name, entry in _table(data, "tokens", source).items())
    digests = [token.digest for token in tokens]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"{FLAG}: {source}: two tokens have the same sha256; give each client its own")
    if not users and not tokens:
        raise ConfigError(
            f"{FLAG}: {source} defines no [users.NAME] or [tokens.NAME]; add one, or drop {FLAG}"
        )
    return AuthConfig(users=users, tokens=tokens, protect_metrics=protect_metrics)


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{FLAG}: {source}: {key} must be a table of [{key}.NAME] sections")
    return table


def _only_keys(entry: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(
            f"{FLAG}: {source}: unknown key {unknown[0]!r} in {where} (known: {', '.join(sorted(allowed))})"
        )


def _tenant(entry: Mapping[str, Any], source: str, where: str) -> str | None:
    tenant = entry.get("tenant")
    if tenant is None:
        return None
    if not isinstance(tenant, str) or not tenant.strip() or tenant != tenant.strip():
        raise ConfigError(f"{FLAG}: {source}: tenant of {where} must be a non-empty string without spaces")
    return tenant


_HOW_TO_HASH_PASSWORD = "make one with: remote-storage hash-password"
_HOW_TO_HASH_TOKEN = 'make one with: printf %s "$TOKEN" | sha256sum'


def _user(name: str, entry: Any, source: str) -> User:
    if ":" in name or not name:
        raise ConfigError(f"{FLAG}: {source}: user name {name!r} must be non-empty and without ':'")
    password_hash, tenant = _secret(
        "users",
        name,
        entry,
        source,
        plain="password",
        hashed="password_hash",
        shape=_BCRYPT_HASH,
        shape_text="a bcrypt hash ($2b$, the cost, $, 53 characters)",
        how=_HOW_TO_HASH_PASSWORD,
    )
    cost = int(password_hash[4:6])
    if not 4 <= cost <= 31:
        raise ConfigError(f"{FLAG}: {source}: password_hash of [users.{name}] has cost {cost}, outside 4..31")
    return User(name, password_hash.encode("ascii"), tenant)


def _token(name: str, entry: Any, source: str) -> Token:
    digest, tenant = _secret(
        "tokens",
        name,
        entry,
        source,
        plain="token",
        hashed="sha256",
        shape=_SHA256_HEX,
        shape_text="64 hex digits",
        how=_HOW_TO_HASH_TOKEN,
    )
    return Token(name, bytes.fromhex(digest), tenant)


def _secret(
    section: str,
    name: str,
    entry: Any,
    source: str,
    *,
    plain: str,
    hashed: str,
    shape: re.Pattern[str],
    shape_text: str,
    how: str,
) -> tuple[str, str | None]:
    """The hashed secret and the tenant of ``[section.name]``; refuses the secret in plain text."""
    where = f"[{section}.{name}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{FLAG}: {source}: {section}.{name} must be a table ({where})")
    if plain in entry:
        raise ConfigError(
            f"{FLAG}: {source}: {where} has the {plain} in plain text; store its hash as {hashed} ({how})"
        )
    _only_keys(entry, {hashed, "tenant"}, source, where)
    value = entry.get(hashed)
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise ConfigError(f"{FLAG}: {source}: {hashed} of {where} must be {shape_text} ({how})")
    return value, _tenant(entry, source, where)


def hash_password(password: bytes, cost: int = DEFAULT_BCRYPT_COST) -> str:
    """A bcrypt hash of ``password`` for the ``password_hash`` of a user.

    >>> hash_password(b"s3cret", cost=4).startswith("$2b$04$")
    True
    """
    if not password:
        raise ValueError("the password is empty")
    if len(password) > BCRYPT_MAX_PASSWORD_BYTES:
        raise ValueError(
            f"the password is {len(password)} bytes; bcrypt reads at most {BCRYPT_MAX_PASSWORD_BYTES}"
        )
    if not 4 <= cost <= 31:
        raise ValueError(f"cost {cost} is outside 4..31")
    hashed: bytes = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost))
    return hashed.decode("ascii")


class AuthMetrics:
    """Counters of the authentication middleware, on the service's registry."""

    def __init__(self, registry: Registry) -> None:
        rejected = Counter(
            "remote_storage_auth_rejected_requests",
            "Requests refused by authentication, by reason "
            "(missing or invalid credentials: 401; tenant not the bound one: 403).",
            ["reason"],
            registry=registry,
        )
        self.missing = rejected.labels("missing")
        self.invalid = rejected.labels("invalid")
        self.tenant = rejected.labels("tenant")
        self.bcrypt_checks = Counter(
            "remote_storage_auth_bcrypt_checks",
            "Password checks that ran bcrypt (the others were answered from the cache of successes).",
            registry=registry,
        )


class Authenticator:
    """Checks an ``Authorization`` header against an :class:`AuthConfig`.

    >>> config = parse_auth_config('[tokens.ci]\\nsha256 = "' + hashlib.sha256(b"t0k").hexdigest() + '"')
    >>> asyncio.run(Authenticator(config).authenticate("Bearer t0k"))
    Principal(name='token:ci', tenant=None)
    """

    def __init__(self, config: AuthConfig, metrics: AuthMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self._cache_key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, User] = OrderedDict()
        self._pending: dict[bytes, asyncio.Task[User | None]] = {}
        self._bcrypt_slots: asyncio.Semaphore | None = None
        # Checked against when the user is unknown, so that costs the same time as a wrong password.
        self._decoy_hash = next((u.password_hash for u in config.users.values()), b"")

    def challenge(self) -> list[str]:
        """The ``WWW-Authenticate`` values of a 401: one per scheme the config accepts."""
        values = []
        if self.config.users:
            values.append(f'Basic realm="{REALM}", charset="UTF-8"')
        if self.config.tokens:
            values.append(f'Bearer realm="{REALM}"')
        return values

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal the header proves; :class:`Unauthorized` when it proves none."""
        if not authorization:
            raise Unauthorized("missing")
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and self.config.tokens:
            token = self._token(credentials)
            if token is not None:
                return Principal(f"token:{token.name}", token.tenant)
        elif scheme == "basic" and self.config.users:
            user = await self._basic(credentials)
            if user is not None:
                return Principal(f"user:{user.name}", user.tenant)
        raise Unauthorized("invalid")

    def _token(self, text: str) -> Token | None:
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()
        found = None
        for token in self.config.tokens:  # no early exit: the time does not depend on which one matched
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found

    async def _basic(self, credentials: str) -> User | None:
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return None
        name_bytes, colon, password = decoded.partition(b":")
        if not colon:
            return None
        name = name_bytes.decode("utf-8", "replace")
        # The name ends at the first ":", so the decoded text stands for exactly one (name, password).
        key = hmac.digest(self._cache_key, decoded, "sha256")
        user = self._verified.get(key)
        if user is not None:
            self._verified.move_to_end(key)
            return user
        task = self._pending.get(key)
        if task is None:  # else the same credentials are being checked already: share that check
            task = asyncio.create_task(self._check(name, password))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        # Shielded: a request that goes away does not cancel the check others wait for.
        return await asyncio.shield(task)

    def _settle(self, key: bytes, task: asyncio.Task[User | None]) -> None:
        del self._pending[key]
        if task.cancelled() or task.exception() is not None:
            return
        user = task.result()
        if user is not None:
            self._verified[key] = user
            if len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)

    async def _check(self, name: str, password: bytes) -> User | None:
        user = self.config.users.get(name)
        if len(password) > BCRYPT_MAX_PASSWORD_BYTES:
            return None  # no stored password is this long: hash_password refuses them
        if self._bcrypt_slots is None:
            self._bcrypt_slots = asyncio.Semaphore(BCRYPT_CONCURRENCY)
        async with self._bcrypt_slots:
            if self.metrics is not None:
                self.metrics.bcrypt_checks.inc()
            stored = user.password_hash if user is not None else self._decoy_hash
            matched = await asyncio.to_thread(bcrypt.checkpw, password, stored)
        return user if matched and user is not None else None


PRINCIPAL = web.RequestKey("principal", Principal)


def bound_tenant(request: web.Request) -> str | None:
    """The tenant the request's credentials are bound to; None when unbound or unauthenticated."""
    principal = request.get(PRINCIPAL)
    return principal.tenant if principal is not None else None


def auth_middleware(config: AuthConfig, tenant_header: str, registry: Registry) -> Middleware:
    """The middleware that authenticates every request but those to :data:`OPEN_PATHS`."""
    metrics = AuthMetrics(registry)
    authenticator = Authenticator(config, metrics)
    open_paths = OPEN_PATHS if config.protect_metrics else OPEN_PATHS | {METRICS_PATH}

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        try:
            principal = await authenticator.authenticate(request.headers.get("Authorization"))
            sent = request.headers.get(tenant_header, "").strip()
            if principal.tenant is not None and sent and sent != principal.tenant:
                raise TenantForbidden(principal.tenant, sent, tenant_header)
        except Unauthorized as exc:
            (metrics.missing if exc.reason == "missing" else metrics.invalid).inc()
            response = _error(exc)
            for value in authenticator.challenge():
                response.headers.add("WWW-Authenticate", value)
            return response
        except TenantForbidden as exc:
            metrics.tenant.inc()
            return _error(exc)
        request[PRINCIPAL] = principal
        return await handler(request)

    return authenticate


def _error(exc: RemoteStorageError) -> web.Response:
    return web.Response(status=exc.http_status, text=f"{exc}\n", charset="utf-8")
