"""Storage backends and the registry that opens one from a URL.

``open_storage("memory://")`` returns a backend chosen by the URL scheme.
Built-in schemes are listed in ``BUILTIN``; other packages add schemes through
the entry-point group ``remote_storage.backends``, whose entries name either a
class with a ``from_url(url)`` classmethod or any callable taking the URL::

    [project.entry-points."remote_storage.backends"]
    mydb = "my_package.storage:MyStorage"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from remote_storage.storage import RemoteStorage

__all__ = ["BUILTIN", "UnknownBackend", "available_schemes", "open_storage"]

ENTRY_POINT_GROUP = "remote_storage.backends"

# scheme -> "module:attribute"; imported only when used.
BUILTIN: dict[str, str] = {
    "memory": "remote_storage.backends.memory:MemoryStorage",
}


class UnknownBackend(ValueError):
    """No backend is registered for the URL's scheme."""

    def __init__(self, url: str, scheme: str) -> None:
        super().__init__(
            f"no storage backend for scheme {scheme!r} in {url!r}; "
            f"known schemes: {', '.join(sorted(available_schemes()))}"
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


def open_storage(url: str) -> RemoteStorage:
    """Create (but do not start) the backend for ``url``."""
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise UnknownBackend(url, "")
    storage = _factory(scheme, url)(url)
    if not isinstance(storage, RemoteStorage):
        raise TypeError(f"backend for {scheme!r} returned {type(storage).__name__}, not a RemoteStorage")
    return storage
