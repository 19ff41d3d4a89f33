"""How a backend runs in processes: what starts the server asks this, never the backend object.

``serve --workers N`` runs N server processes on one port. Whether that is
allowed, how many ``--workers 0`` (auto) means, and what each process does
differently depend on the backend, but not on any one backend object: they
belong to what starts the server (:mod:`remote_storage.launch`), so they are
described here and registered with the backend's URL scheme
(:func:`remote_storage.backends.deployment_for`), outside the
:class:`~remote_storage.storage.RemoteStorage` interface.

A backend that says nothing runs as :data:`ONE_PROCESS`.

>>> ONE_PROCESS.shared_by_processes, ONE_PROCESS.default_workers
(False, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from remote_storage.storage import RemoteStorage

__all__ = ["ONE_PROCESS", "Deployment"]


def _same_in_every_worker(storage: RemoteStorage, index: int, count: int) -> None:
    """Every worker does the same."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """What ``serve --workers`` needs to know about a backend."""

    #: True when several processes opening the same URL see one store, so that
    #: ``--workers N`` above 1 is allowed; False refuses it with a one-line error.
    shared_by_processes: bool = False
    #: How many server processes ``--workers 0`` (auto) runs.
    default_workers: int = 1
    #: ``configure_worker(storage, index, count)`` is called in worker ``index`` of
    #: ``count`` processes on its own backend object, before ``start``.
    configure_worker: Callable[[RemoteStorage, int, int], None] = _same_in_every_worker

    def __post_init__(self) -> None:
        if self.default_workers < 1:
            raise ValueError(f"default_workers must be at least 1, not {self.default_workers}")


#: A backend whose data lives inside one process (``memory://``), and any backend that registers nothing.
ONE_PROCESS = Deployment()
