"""Storage backends and the registry that opens one from a URL.

``open_storage("memory://")`` returns a backend chosen by the URL scheme.
Built-in schemes are listed in ``BUILTIN``; other packages add schemes through
the entry-point group ``remote_storage.backends``, whose entries name either a
class with a ``from_url(url)`` classmethod or any callable taking the URL::

    [project.entry-points."remote_storage.backends"]
    mydb = "my_package.storage:MyStorage"

``url`` is the whole ``--storage`` value as a ``str``, scheme included
(``"mydb://host/path?option=1"``); the factory parses it (``urllib.parse.urlsplit``),
raises :class:`InvalidStorageURL` for what it does not accept, and returns a
backend that is not started yet. A factory that also takes a keyword
``retention`` (seconds, a float) supports ``--retention``. See ``docs/backends.md``.

How a backend runs in several server processes (``serve --workers``) is a
:class:`~remote_storage.deployment.Deployment` registered with its scheme,
not part of the backend object: :func:`deployment_for` finds it in
``BUILTIN_DEPLOYMENTS`` or in the entry-point group
``remote_storage.deployments`` (entries name a ``Deployment``); a scheme
without one runs in one process.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from urllib.parse import urlsplit, urlunsplit

from remote_storage.deployment import ONE_PROCESS, Deployment
from remote_storage.storage import RemoteStorage

__all__ = [
    "BUILTIN",
    "BUILTIN_DEPLOYMENTS",
    "InvalidStorageURL",
    "UnknownBackend",
    "available_schemes",
    "deployment_for",
    "open_storage",
    "redact_url",
]

ENTRY_POINT_GROUP = "remote_storage.backends"
DEPLOYMENT_GROUP = "remote_storage.deployments"

# scheme -> "module:attribute"; imported only when used.
BUILTIN: dict[str, str] = {
    "memory": "remote_storage.backends.memory:MemoryStorage",
    "sqlite": "remote_storage.backends.sql:SQLStorage",
    "postgresql": "remote_storage.backends.sql:SQLStorage",
    "postgres": "remote_storage.backends.sql:SQLStorage",
}

# scheme -> "module:attribute" of its Deployment; imported only when used.
BUILTIN_DEPLOYMENTS: dict[str, str] = {
    "memory": "remote_storage.deployment:ONE_PROCESS",
    "sqlite": "remote_storage.backends.sql_deployment:SQLITE",
    "postgresql": "remote_storage.backends.sql_deployment:POSTGRESQL",
    "postgres": "remote_storage.backends.sql_deployment:POSTGRESQL",
}


class InvalidStorageURL(ValueError):
    """A backend URL names an option or value the backend does not accept."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid storage URL {redact_url(url)!r}: {reason}")
        self.url = url
        self.reason = reason


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


class UnknownBackend(ValueError):
    """No backend is registered for the URL's scheme."""

    def __init__(self, url: str, scheme: str) -> None:
        super().__init__(
            f"no storage backend for scheme {scheme!r} in {redact_url(url)!r}; "
            f"known schemes: {', '.join(sorted(available_schemes()))} (a package adds one with an "
            f"entry point in the {ENTRY_POINT_GROUP!r} group: install it, or fix --storage)"
        )
        self.url = url
        self.scheme = scheme


def available_schemes() -> set[str]:
    """Schemes of the built-in backends and of installed plug-ins."""
    return set(BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(target: str) -> object:
    module_name, _, attribute = target.partition(":")
    return getattr(import_module(module_name), attribute)


def _factory(scheme: str, url: str) -> Callable[[str], RemoteStorage]:
    base_scheme = scheme.split("+", 1)[0]  # sqlite+pysqlite:// -> sqlite
    if base_scheme in BUILTIN:
        target = _load(BUILTIN[base_scheme])
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name in (scheme, base_scheme)]
        if not found:
            raise UnknownBackend(url, scheme)
        target = found[0].load()
    factory = getattr(target, "from_url", target)
    if not callable(factory):
        raise TypeError(f"backend entry for {scheme!r} is not callable: {target!r}")
    return factory  # type: ignore[no-any-return,unused-ignore]


def open_storage(url: str, *, retention: float | None = None) -> RemoteStorage:
    """Create (but do not start) the backend for ``url``.

    ``retention`` (seconds) is passed to backends whose factory accepts it;
    asking it of one that does not is an error rather than a silent no-op.
    """
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise UnknownBackend(url, "")
    factory = _factory(scheme, url)
    if retention is None:
        storage = factory(url)
    else:
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        if "retention" not in parameters:
            raise InvalidStorageURL(url, f"the {scheme} backend does not support retention")
        storage = factory(url, retention=retention)  # type: ignore[call-arg]
    if not isinstance(storage, RemoteStorage):
        raise TypeError(f"backend for {scheme!r} returned {type(storage).__name__}, not a RemoteStorage")
    return storage


def deployment_for(url: str) -> Deployment:
    """How the backend for ``url`` runs in server processes (:data:`ONE_PROCESS` unless registered)."""
    scheme = urlsplit(url).scheme.lower()
    base_scheme = scheme.split("+", 1)[0]
    if base_scheme in BUILTIN_DEPLOYMENTS:
        found: object = _load(BUILTIN_DEPLOYMENTS[base_scheme])
    else:
        entries = [ep for ep in entry_points(group=DEPLOYMENT_GROUP) if ep.name in (scheme, base_scheme)]
        if not entries:
            return ONE_PROCESS
        found = entries[0].load()
    if not isinstance(found, Deployment):
        raise TypeError(f"deployment entry for {scheme!r} is not a Deployment: {found!r}")
    return found
