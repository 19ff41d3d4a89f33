"""How the kit gets at a backend: the hooks an author implements, capabilities, running a check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar

import pytest

from remote_storage.errors import SampleConflict
from remote_storage.storage import RemoteStorage

__all__ = ["CAPABILITIES", "Harness", "load_factory"]

#: What a backend may declare in ``unsupported`` (those checks skip, saying so):
#: ``histograms`` (native histograms: the backend must then refuse them with a 400-class error),
#: ``tenants`` (more than one tenant), ``out_of_order`` (samples older than the newest of their
#: series), ``durability`` (data does not outlive the backend object: a memory store).
CAPABILITIES = frozenset({"histograms", "tenants", "out_of_order", "durability"})

Body = Callable[[RemoteStorage], Awaitable[None]]


def load_factory(spec: str) -> Callable[[str], RemoteStorage]:
    """``"package.module:Class.from_url"`` -> that callable (attributes may be dotted)."""
    module_name, found, path = spec.partition(":")
    if not found or not path:
        raise ValueError(f"storage_factory {spec!r} is not 'module:attribute'")
    target: object = import_module(module_name)
    for part in path.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"storage_factory {spec!r} is not callable")
    return target  # type: ignore[return-value,unused-ignore]


class Harness:
    """The hooks of :class:`~remote_storage.testing.BackendConformance`; see its docstring."""

    #: :data:`CAPABILITIES` the backend lacks; their checks skip with the reason.
    unsupported: ClassVar[frozenset[str]] = frozenset()
    #: ``"module:callable"`` that opens the backend from :meth:`storage_url`, in this process
    #: (default :meth:`make_storage`) and in the child process of the crash check.
    storage_factory: ClassVar[str] = "remote_storage.backends:open_storage"
    #: True for a backend that makes its files durable with ``os.fsync``/``os.fdatasync``
    #: called from Python: every write that stores new data must then call one of them.
    fsync_observable: ClassVar[bool] = False
    tmp_path: Path

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.unsupported) - CAPABILITIES
        if unknown:
            raise TypeError(
                f"{cls.__name__}.unsupported names unknown capabilities {sorted(unknown)}; "
                f"known: {sorted(CAPABILITIES)}"
            )

    def storage_url(self) -> str | None:
        """The URL the backend is opened from (a ``str``, as ``--storage`` takes it), or None.

        Needed by the crash check, which opens the backend in another process;
        unique per test (use ``self.tmp_path``).
        """
        return None

    def make_storage(self) -> RemoteStorage:
        """A new, empty backend, not started yet. Default: ``storage_factory(storage_url())``."""
        url = self.storage_url()
        if url is None:
            raise NotImplementedError(f"{type(self).__name__} must implement make_storage() or storage_url()")
        return load_factory(self.storage_factory)(url)

    def reopen(self) -> RemoteStorage:
        """A new backend object over the data the previous one stored, not started yet.

        Called after the previous object was closed, or its process killed.
        Default: :meth:`make_storage` again, which for a backend opened from a
        URL or a file under ``self.tmp_path`` is the same store.
        """
        return self.make_storage()

    @pytest.fixture(autouse=True)
    def _conformance_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def require(self, *capabilities: str) -> None:
        """Skip the running check when the backend declares one of ``capabilities`` unsupported."""
        for capability in capabilities:
            if capability not in CAPABILITIES:
                raise ValueError(f"unknown capability {capability!r}")
            if capability in self.unsupported:
                pytest.skip(f"{type(self).__name__} declares {capability!r} unsupported")

    def run(self, body: Body, *needs: str) -> None:
        """Start a fresh backend, await ``body(storage)``, close the backend.

        ``needs`` names the capabilities the check relies on; it skips when the
        backend declares one of them unsupported.
        """
        self.require(*needs)

        async def main() -> None:
            storage = self.make_storage()
            await storage.start()
            try:
                await body(storage)
            finally:
                await storage.close()

        self.execute(main())

    def execute(self, main: Coroutine[Any, Any, None]) -> None:
        """Run a check's coroutine; a conflict it did not expect fails it with the refused sample."""
        try:
            asyncio.run(main)
        except SampleConflict as refused:
            raise AssertionError(
                f"a write the contract requires to succeed was refused: {refused}"
            ) from refused

    async def started(self, storage: RemoteStorage) -> RemoteStorage:
        """``storage`` after ``start()``: ``backend = await self.started(self.reopen())``."""
        await storage.start()
        return storage
