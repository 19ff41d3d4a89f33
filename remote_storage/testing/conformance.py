""":class:`BackendConformance`: every check of the kit in one class to subclass."""

from __future__ import annotations

from remote_storage.testing.contract import ContractChecks
from remote_storage.testing.durability import DurabilityChecks
from remote_storage.testing.load import LoadChecks

__all__ = ["BackendConformance"]


class BackendConformance(ContractChecks, LoadChecks, DurabilityChecks):
    """Base class of a backend's conformance tests: subclass it in a test module.

    Hooks (implement :meth:`make_storage` or :meth:`storage_url`, or both):

    * ``make_storage()``: a new, empty backend, not started yet (default:
      ``storage_factory(storage_url())``).
    * ``storage_url()``: the URL (a ``str``) the backend is opened from; the
      crash check opens it in a child process. Make it unique per test with
      ``self.tmp_path``.
    * ``storage_factory``: ``"module:callable"`` taking that URL (default
      :func:`remote_storage.backends.open_storage`, which knows registered
      schemes); the child process imports it.
    * ``reopen()``: a new object over the data of the previous one (default:
      ``make_storage()`` again, that is the same URL or file).
    * ``unsupported``: the :data:`~remote_storage.testing.CAPABILITIES` the
      backend lacks; their checks skip and say so.
    * ``fsync_observable``: set it when the backend syncs files with
      ``os.fsync``/``os.fdatasync``; every write must then call one.

    Each check starts its own backend and closes it; the checks write to the
    tenants ``"default"``, ``"t1"``, ``"t2"`` and ``"team a/ü"`` only.
    Failures name the label set, the timestamp and both values, without
    relying on pytest's assert rewriting.
    """
