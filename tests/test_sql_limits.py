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
from pathlib import Path
from typing import ClassVar

from remote_storage.backends.sql import SQLStorage
from remote_storage.matchers import Matcher
from remote_storage.storage import Context, Labels, TimeSeries, WriteRequest
from remote_storage.testing import run_query


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


def test_sqlite_stores_a_series_of_40000_labels(tmp_path: Path) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        try:
            labels = many_labels(40_000)
            await storage.write(Context(), WriteRequest([TimeSeries(labels, [1000], [1.0])]))
            (found,) = await run_query(storage, Matcher.parse("l039999", "=", "v39999"))
            assert found.labels == labels
        finally:
            await storage.close()

    asyncio.run(body())
