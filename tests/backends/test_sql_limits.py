"""Label sets at the edges of what the SQL backend stores: very many labels, very long ones.

SQLite stores any label set the server accepts, and the work a new series
costs grows linearly with its labels. PostgreSQL keeps label sets and label
pairs in B-tree indexes whose entries are limited to 2704 bytes (8 KiB
pages); a label set that cannot fit is refused with 400 before it reaches
the database, and the limit is exact: the largest label set that fits is
stored.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import psycopg
import pytest

from remote_storage.backends import sql_schema as schema
from remote_storage.backends.sql import SQLStorage
from remote_storage.errors import LabelSetTooLarge, TenantNameTooLong
from remote_storage.matchers import Matcher
from remote_storage.storage import (
    DEFAULT_TENANT,
    Context,
    Labels,
    MetricMetadata,
    MetricType,
    TimeSeries,
    WriteRequest,
)
from remote_storage.testing import run_query
from tests.support import wire
from tests.support.adapter import start_adapter
from tests.support.load import HttpClient
from tests.support.procs import Processes


class CountingLabels(Labels):
    """A label set that counts how often it is hashed (each hash reads every label)."""

    __slots__ = ()
    hashes: ClassVar[int] = 0

    def __hash__(self) -> int:
        CountingLabels.hashes += 1
        return tuple.__hash__(self)


def many_labels(count: int, labels: type[Labels] = Labels) -> Labels:
    return labels(sorted([("__name__", "wide"), *((f"l{i:06d}", f"v{i}") for i in range(count))]))


def hashes_to_store_a_new_series(tmp_path: Path, count: int) -> int:
    """How many times writing one new series of ``count`` labels hashes its whole label set."""

    async def body() -> int:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/{count}.db")
        await storage.start()
        try:
            labels = many_labels(count, CountingLabels)
            CountingLabels.hashes = 0
            await storage.write(Context(), WriteRequest([TimeSeries(labels, [1000], [1.0])]))
            return CountingLabels.hashes
        finally:
            await storage.close()

    return asyncio.run(body())


def test_a_new_series_costs_work_linear_in_its_labels(tmp_path: Path) -> None:
    """The label set is hashed (a pass over all its labels) a fixed number of times, whatever its size.

    Hashing it once per label, as series creation once did to find the
    series id of each posting, made a series of N labels cost N^2 (40,000
    labels took 18 s and held every other write up meanwhile).
    """
    few = hashes_to_store_a_new_series(tmp_path, 10)
    many = hashes_to_store_a_new_series(tmp_path, 2000)
    assert many == few, f"a new series of 2000 labels hashed its label set {many} times, of 10: {few}"
    assert few <= 20  # a handful of dict operations per series, none per label


@pytest.mark.parametrize(
    "labels",
    [many_labels(40_000), Labels([("__name__", "long"), ("value", "x" * (1 << 20))])],
    ids=["40000 labels", "1 MiB value"],
)
def test_sqlite_stores_label_sets_of_any_size(tmp_path: Path, labels: Labels) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        try:
            await storage.write(Context(), WriteRequest([TimeSeries(labels, [1000], [1.0])]))
            (found,) = await run_query(storage, Matcher.parse("__name__", "=", labels.metric_name))
            assert found.labels == labels
        finally:
            await storage.close()

    asyncio.run(body())


def incompressible(length: int, seed: int = 0) -> str:
    """Text PostgreSQL cannot compress in line, so its index entry takes its full length."""
    return "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=length))


def largest_fitting(make: Callable[[int], Labels]) -> int:
    """The largest length for which ``make(length)`` fits every PostgreSQL index, by bisection."""
    low, high = 1, 8192  # fits, does not fit
    assert schema.oversized_postgresql_entry(DEFAULT_TENANT, make(low)) is None
    assert schema.oversized_postgresql_entry(DEFAULT_TENANT, make(high)) is not None
    while high - low > 1:
        middle = (low + high) // 2
        if schema.oversized_postgresql_entry(DEFAULT_TENANT, make(middle)) is None:
            low = middle
        else:
            high = middle
    return low


def one_label(length: int) -> Labels:
    """A label set whose one long value makes its pair's entry the largest one."""
    return Labels([("__name__", "edge"), ("v", incompressible(length))])


def long_name(length: int) -> Labels:
    """A label set of a long metric name only: its pair's entry is the largest one."""
    return Labels([("__name__", incompressible(length, seed=1))])


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("make", "index"), [(one_label, "rs_pairs_tenant_name_value"), (long_name, "rs_pairs_tenant_name_value")]
)
def test_postgresql_index_limit_is_exact(
    postgres_url: str, make: Callable[[int], Labels], index: str
) -> None:
    """The largest label set that fits is stored; one byte more is refused with LabelSetTooLarge,
    and PostgreSQL itself refuses that entry (so the check is exact, not merely cautious)."""
    length = largest_fitting(make)
    fits, too_large = make(length), make(length + 1)
    assert schema.oversized_postgresql_entry(DEFAULT_TENANT, too_large) == (
        index,
        schema.POSTGRESQL_INDEX_ENTRY_LIMIT + 8,  # entries grow in steps of 8 bytes
    )

    async def body() -> None:
        storage = SQLStorage.from_url(postgres_url)
        await storage.start()
        try:
            await storage.write(Context(), WriteRequest([TimeSeries(fits, [1000], [1.0])]))
            with pytest.raises(
                LabelSetTooLarge, match=f"index {index}, above PostgreSQL's limit of 2704"
            ) as info:
                await storage.write(Context(), WriteRequest([TimeSeries(too_large, [1000], [2.0])]))
            assert info.value.http_status == 400 and "\n" not in str(info.value)
            found = await run_query(storage, Matcher.parse("__name__", "=~", ".+"))
            assert [series.labels for series in found] == [fits]
        finally:
            await storage.close()

    asyncio.run(body())
    # What the check spares the database: PostgreSQL refuses that index entry.
    name, value = max(too_large, key=lambda pair: len(pair[0]) + len(pair[1]))
    with (
        psycopg.connect(postgres_url, connect_timeout=5) as conn,
        pytest.raises(psycopg.errors.ProgramLimitExceeded, match="index row size"),
    ):
        conn.execute("INSERT INTO rs_pairs (tenant_id, name, value) VALUES (1, %s, %s)", (name, value))


@pytest.mark.postgres
def test_label_sets_postgresql_cannot_index_are_refused_with_400(
    postgres_url: str, processes: Processes
) -> None:
    # the service's own label limits off: what is left to refuse these is the backend's index limit
    served = start_adapter(
        processes, postgres_url, extra_args=("--max-labels-per-series", "0", "--max-label-value-length", "0")
    )
    served.wait_ready(30.0)
    refused = {
        "3 KB value": Labels([("__name__", "refused"), ("value", incompressible(3000))]),
        "1 MiB value": Labels([("__name__", "refused"), ("value", incompressible(1 << 20))]),
    }
    # Label sets larger than an index entry whose pairs each fit: stored (schema 4 indexes pairs).
    stored = {
        "3 KB": Labels(
            sorted([("__name__", "stored"), *((f"label_{i:02d}", incompressible(100, i)) for i in range(30))])
        ),
        "5,000 labels": many_labels(5000),
    }
    with HttpClient(served.address) as client:
        for what, labels in refused.items():
            body = wire.v1_body([TimeSeries(labels, [1000], [1.0])])
            status, text = client.post("/api/v1/write", body, wire.V1_HEADERS)
            assert status == 400, (what, status, text[:300])
            assert b"2704 bytes per index entry" in text and b"\n" not in text.rstrip(b"\n"), text[:300]
        for what, labels in stored.items():
            body = wire.v1_body([TimeSeries(labels, [1000], [1.0])])
            status, text = client.post("/api/v1/write", body, wire.V1_HEADERS)
            assert status == 204, (what, status, text[:300])
        # Nothing of the refused ones was stored, and the adapter goes on serving.
        kept = TimeSeries(Labels([("__name__", "kept")]), [1000], [1.0])
        status, text = client.post("/api/v1/write", wire.v1_body([kept]), wire.V1_HEADERS)
        assert status == 204, text
        query = wire.read_body((0, 10_000, [Matcher.parse("__name__", "=~", ".+")]))
        status, text = client.post("/api/v1/read", query, wire.READ_HEADERS)
        assert status == 200, text[:300]
    (result,) = wire.read_results(text)
    assert sorted(series.labels for series in result.series) == sorted([kept.labels, *stored.values()])
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM rs_series").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM rs_pairs").fetchone() == (1 + 31 + 5001,)


@pytest.mark.postgres
def test_a_tenant_name_postgresql_cannot_index_is_refused_with_400(
    postgres_url: str, processes: Processes
) -> None:
    """Tenants are numbered in ``rs_tenants``, whose index holds the name: a name too long for
    it is one line naming the limit (400), before anything is stored; a long one that fits is
    stored."""
    length = 1
    while schema.postgresql_tenant_entry_bytes("t" * (length + 1)) <= schema.POSTGRESQL_INDEX_ENTRY_LIMIT:
        length += 1
    assert length > 2600

    async def body() -> None:
        storage = SQLStorage.from_url(postgres_url)
        await storage.start()
        try:
            series = [TimeSeries(Labels([("__name__", "up")]), [1000], [1.0])]
            with pytest.raises(TenantNameTooLong, match="above PostgreSQL's limit of 2704") as info:
                await storage.write(Context(tenant="t" * (length + 1)), WriteRequest(series))
            assert info.value.http_status == 400 and "\n" not in str(info.value)
            await storage.write(Context(tenant="t" * length), WriteRequest(series))
            found = await run_query(
                storage, Matcher.parse("__name__", "=", "up"), ctx=Context(tenant="t" * length)
            )
            assert [s.labels for s in found] == [series[0].labels]
        finally:
            await storage.close()

    asyncio.run(body())
    served = start_adapter(processes, postgres_url)
    served.wait_ready(30.0)
    body_bytes = wire.v1_body([TimeSeries(Labels([("__name__", "up")]), [1000], [1.0])])
    with HttpClient(served.address) as client:
        headers = {**wire.V1_HEADERS, "X-Scope-OrgID": "x" * 3000}
        status, text = client.post("/api/v1/write", body_bytes, headers)
        assert status == 400, (status, text[:300])
        assert b"tenant name of 3000 bytes" in text and b"2704 bytes per index entry" in text, text[:300]
        assert b"\n" not in text.rstrip(b"\n")
        status, text = client.post("/api/v1/write", body_bytes, wire.V1_HEADERS)
        assert status == 204, text
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM rs_tenants").fetchone() == (2,)


@pytest.mark.postgres
def test_a_metric_family_name_postgresql_cannot_index_is_refused(postgres_url: str) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(postgres_url)
        await storage.start()
        try:
            family = incompressible(3000)
            request = WriteRequest([], [MetricMetadata(family, MetricType.GAUGE, "Too long.", "")])
            with pytest.raises(
                LabelSetTooLarge, match="index rs_metadata_pkey, above PostgreSQL's limit of 2704"
            ):
                await storage.write(Context(), request)
            assert await storage.metadata(Context()) == {}
        finally:
            await storage.close()

    asyncio.run(body())
