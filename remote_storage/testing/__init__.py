"""A conformance kit for storage backends: subclass :class:`BackendConformance` and run pytest.

Every backend keeps the semantics documented in :mod:`remote_storage.storage`
(durable acknowledged writes, bit-exact values, inclusive ranges, Prometheus
matcher rules, sorted results, idempotent retries, atomic writes, tenant
isolation, safety under concurrent requests). The kit checks them against any
:class:`~remote_storage.storage.RemoteStorage`::

    # tests/test_my_backend.py
    from remote_storage.testing import BackendConformance

    class TestMyStorage(BackendConformance):
        storage_factory = "my_package.storage:MyStorage.from_url"
        unsupported = frozenset({"histograms"})  # those checks skip, saying so

        def storage_url(self):
            return f"mydb://{self.tmp_path}/data"

The hooks are described on :class:`BackendConformance`, the capabilities a
backend may declare unsupported in :data:`CAPABILITIES`, what the durability
checks can and cannot observe in :mod:`remote_storage.testing.durability`,
and the whole walk from a first class to a production backend in
``docs/backends.md``.

The kit needs only pytest. Its checks run their coroutines with
:func:`asyncio.run`, and their failures explain themselves without pytest's
assert rewriting (which does not reach installed packages).
"""

from remote_storage.storage import float_bits, float_from_bits
from remote_storage.testing.conformance import BackendConformance
from remote_storage.testing.expect import describe, expect, expect_refused, expect_series
from remote_storage.testing.harness import CAPABILITIES
from remote_storage.testing.values import (
    MAX_TIME,
    MIN_TIME,
    SPECIAL_VALUES,
    STALE_NAN_BITS,
    bits,
    histogram_sample,
    make_series,
    matcher,
    run_query,
    snapshot,
    write,
)

__all__ = [
    "CAPABILITIES",
    "MAX_TIME",
    "MIN_TIME",
    "SPECIAL_VALUES",
    "STALE_NAN_BITS",
    "BackendConformance",
    "bits",
    "describe",
    "expect",
    "expect_refused",
    "expect_series",
    "float_bits",
    "float_from_bits",
    "histogram_sample",
    "make_series",
    "matcher",
    "run_query",
    "snapshot",
    "write",
]
