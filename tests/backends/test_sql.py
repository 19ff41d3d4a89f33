"""The SQL backend on SQLite and PostgreSQL: the conformance suite, schema checks, retention."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage.backends import InvalidStorageURL, open_storage
from remote_storage.backends.sql import DatabaseMismatch, SQLStorage
from remote_storage.backends.sql_query import select_series
from remote_storage.errors import CannotOpenStorage, SampleConflict
from remote_storage.matchers import Matcher
from remote_storage.storage import Context, MetricMetadata, MetricType, WriteRequest
from remote_storage.testing import BackendConformance, float_from_bits, make_series, run_query, snapshot


class TestSQLiteConformance(BackendConformance):
    def storage_url(self) -> str:
        return f"sqlite:///{self.tmp_path}/data.db"


class CompactingStorage(SQLStorage):
    """Moves every sample into chunks after each write: the suite then runs on chunked data."""

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        await super().write(ctx, request)
        await self.compact(2**62)


class TestSQLiteCompactedConformance(BackendConformance):
    storage_factory = "tests.backends.test_sql:CompactingStorage.from_url"

    def storage_url(self) -> str:
        return f"sqlite:///{self.tmp_path}/data.db"


class TestSQLiteSmallChunksConformance(BackendConformance):
    """Chunks of 3 samples: every write lands in a refilled last chunk or in new ones after it."""

    storage_factory = "tests.backends.test_sql:CompactingStorage.from_url"

    def storage_url(self) -> str:
        return f"sqlite:///{self.tmp_path}/data.db?chunk_samples=3"


@pytest.mark.postgres
class TestPostgreSQLConformance(BackendConformance):
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> None:
        self.url = postgres_url

    def storage_url(self) -> str:
        return self.url


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def test_data_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/data.db"
    up = make_series({"__name__": "up", "job": "a"}, [(1000, 1.0), (2000, 0.0)])

    async def first() -> None:
        storage = SQLStorage.from_url(url)
        await storage.start()
        await storage.write(
            Context(), WriteRequest([up], [MetricMetadata("up", MetricType.GAUGE, "Up.", "")])
        )
        await storage.close()

    async def second() -> None:
        storage = SQLStorage.from_url(url)
        await storage.start()
        found = await run_query(storage, Matcher.parse("job", "=", "a"))
        assert snapshot(found) == snapshot([up])
        assert (await storage.metadata(Context()))["up"].help == "Up."
        await storage.close()

    run(first)
    run(second)


def test_foreign_and_newer_databases_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    newer = tmp_path / "newer.db"
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("hello, this is not a database at all" * 100)

    async def open_and_close(path: Path) -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        await storage.close()

    run(lambda: open_and_close(newer))
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE rs_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(DatabaseMismatch, match="of another program"):
        run(lambda: open_and_close(foreign))
    with pytest.raises(DatabaseMismatch, match="schema version 99, newer than this remote-storage supports"):
        run(lambda: open_and_close(newer))
    with pytest.raises(CannotOpenStorage, match="is not a SQLite database"):
        run(lambda: open_and_close(not_a_db))


def test_values_are_stored_as_their_bits(tmp_path: Path) -> None:
    stale = make_series({"__name__": "x"}, [(1, float.fromhex("nan"))])

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        await storage.write(Context(), WriteRequest([stale]))
        await storage.close()

    run(body)
    with sqlite3.connect(tmp_path / "d.db") as conn:
        (value,) = conn.execute("SELECT value FROM rs_samples").fetchone()
    assert value == 0x7FF8000000000000  # not NULL, as a REAL column would hold


def test_wal_mode_and_full_synchronous(tmp_path: Path) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        assert storage.engine is not None
        with storage.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        await storage.close()

    run(body)


def test_reads_take_a_snapshot_and_never_hold_up_the_writer(tmp_path: Path) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        try:
            await storage.write(Context(), WriteRequest([make_series({"__name__": "a"}, [(1, 1.0)])]))
            assert storage.read_engine is not storage.engine
            with storage.read_engine.connect() as reader:
                assert reader.exec_driver_sql("PRAGMA query_only").scalar() == 1
                count = "SELECT count(*) FROM rs_samples"
                assert reader.exec_driver_sql(count).scalar() == 1  # the read transaction is open
                # The writer commits while it is open (a reader holding the write lock would make
                # this wait for the 30 s busy timeout), and the reader keeps its snapshot.
                request = WriteRequest([make_series({"__name__": "a"}, [(2, 2.0)])])
                await asyncio.wait_for(storage.write(Context(), request), timeout=10)
                assert reader.exec_driver_sql(count).scalar() == 1
            (found,) = await run_query(storage, Matcher.parse("__name__", "=", "a"))
            assert list(found.timestamps) == [1, 2]
        finally:
            await storage.close()

    run(body)


def test_a_read_sees_one_snapshot_while_compaction_moves_rows_into_chunks(sql_storage_url: str) -> None:
    """Every statement of one read, driver cursor included, sees the database as at its first one."""
    from remote_storage.backends.sql_schema import driver_rows

    def counts(conn: Any) -> list[int]:
        return [
            driver_rows(conn, f"SELECT count(*) FROM {table}", [])[0][0]
            for table in ("rs_samples", "rs_chunks")
        ]

    async def body() -> None:
        storage = SQLStorage.from_url(sql_storage_url)
        await storage.start()
        try:
            samples = [(t * 15_000, float(t)) for t in range(10)]
            await storage.write(Context(), WriteRequest([make_series({"__name__": "s"}, samples)]))
            loop = asyncio.get_running_loop()

            def compact_between(conn: Any) -> tuple[list[int], int, list[int]]:
                before = counts(conn)
                moved = asyncio.run_coroutine_threadsafe(storage.compact(2**62), loop).result(timeout=60)
                return before, moved, counts(conn)

            before, moved, after = await loop.run_in_executor(None, storage.in_snapshot, compact_between)
            assert moved == 10
            assert before == after == [10, 0]
            assert await loop.run_in_executor(None, storage.in_snapshot, counts) == [0, 1]
        finally:
            await storage.close()

    run(body)


def test_label_sets_decoded_with_a_pair_cache_are_the_same_and_share_pairs() -> None:
    from remote_storage.backends.sql_schema import decode_labels, encode_labels
    from remote_storage.storage import Labels

    sets = [
        Labels([("__name__", "up"), ("instance", f"host-{i % 3}"), ("job", "node"), ("zone", "é\u00e9")])
        for i in range(10)
    ] + [Labels(), Labels([("", "")])]
    pairs: dict[tuple[bytes, bytes], tuple[str, str]] = {}
    decoded = [decode_labels(encode_labels(labels), pairs) for labels in sets]
    assert decoded == [decode_labels(encode_labels(labels)) for labels in sets] == sets
    assert decoded[0][2] is decoded[9][2]  # ("job", "node"), decoded once
    assert len(pairs) == 3 + 3 + 1  # shared pairs, three instances, the empty pair


_LABEL_TEXT = st.text(alphabet=st.sampled_from(["a", "b", "é", "\u4e2d", "_", "\x00", " "]), max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(_LABEL_TEXT, _LABEL_TEXT, max_size=4), max_size=30))
def test_encoded_label_sets_sort_as_the_label_sets_do(mappings: list[dict[str, str]]) -> None:
    from remote_storage.backends.sql_query import sort_by_labels
    from remote_storage.backends.sql_schema import encode_labels
    from remote_storage.storage import Labels

    sets = [Labels(sorted(m.items())) for m in mappings]
    rows = [(index, encode_labels(labels)) for index, labels in enumerate(sets)]
    assert [sets[index] for index, _ in sort_by_labels(rows)] == sorted(sets)


def test_regex_with_more_matching_values_than_one_in_list_holds(tmp_path: Path) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        try:
            series = [make_series({"__name__": "m", "i": f"{i:04}"}, [(1, float(i))]) for i in range(1200)]
            await storage.write(Context(), WriteRequest(series))
            found = await run_query(storage, Matcher.parse("i", "=~", "0.*[13579]"))  # 500 values: an IN list
            assert [s.labels.get("i") for s in found] == [f"{i:04}" for i in range(1, 1000, 2)]
            found = await run_query(storage, Matcher.parse("i", "=~", ".*[0-8]"))  # 1080: checked in Python
            assert [s.labels.get("i") for s in found] == [f"{i:04}" for i in range(1200) if i % 10 != 9]
            found = await run_query(storage, Matcher.parse("i", "!~", "0.*[0-8]"))  # 900 rejected: NOT IN
            assert [s.labels.get("i") for s in found] == [
                f"{i:04}" for i in range(1200) if i >= 1000 or i % 10 == 9
            ]
            found = await run_query(storage, Matcher.parse("i", "!~", ".*[0-8]"))  # 1080 rejected: Python
            assert [s.labels.get("i") for s in found] == [f"{i:04}" for i in range(1200) if i % 10 == 9]
        finally:
            await storage.close()

    run(body)


def test_retention_deletes_old_samples_only(tmp_path: Path) -> None:
    old_and_new = make_series({"__name__": "m"}, [(1000, 1.0), (5000, 2.0), (9000, 3.0)])

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        await storage.write(Context(), WriteRequest([old_and_new]))
        assert await storage.apply_retention(6000, slice_size=1) == 2
        found = await run_query(storage, Matcher.parse("__name__", "=", "m"))
        assert snapshot(found) == snapshot([make_series({"__name__": "m"}, [(9000, 3.0)])])
        await storage.close()

    run(body)


def test_url_options() -> None:
    storage = SQLStorage.from_url("sqlite:///x.db?retention=15d&synchronous=normal&pool_size=2")
    assert storage.retention == 15 * 86400
    assert storage.chunk_samples == 480
    assert SQLStorage.from_url("sqlite:///x.db?chunk_samples=120").chunk_samples == 120
    assert storage.write_timeout == 15.0
    timed = SQLStorage.from_url("sqlite:///x.db?write_timeout=3s")
    assert timed.write_timeout == 3.0 and "write_timeout" not in timed.url
    assert storage.synchronous == "normal"
    assert storage.pool_size == 2
    assert "retention" not in storage.url
    assert SQLStorage.from_url("postgresql://u:p@h/db").url.startswith("postgresql+psycopg://")
    assert isinstance(open_storage("sqlite:///x.db", retention=60.0), SQLStorage)
    for bad in (
        "sqlite:///x.db?synchronous=off",
        "sqlite:///x.db?retention=soon",
        "sqlite:///x.db?pool_size=0",
        "sqlite:///x.db?chunk_samples=0",
        "sqlite:///x.db?chunk_samples=65536",
        "sqlite:///x.db?write_timeout=0s",
    ):
        with pytest.raises(InvalidStorageURL):
            SQLStorage.from_url(bad)
    with pytest.raises(InvalidStorageURL, match="does not support retention"):
        open_storage("memory://", retention=60.0)


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_compaction_moves_old_samples_into_chunks_and_reads_stay_the_same(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    stale = float_from_bits(0x7FF0000000000002)
    samples = [(t * 15_000, float(t % 7) if t % 50 else stale) for t in range(300)]
    series = make_series({"__name__": "c", "job": "x"}, samples)
    query = Matcher.parse("job", "=", "x")

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}?chunk_samples=120")
        await storage.start()
        await storage.write(Context(), WriteRequest([series]))
        before = snapshot(await run_query(storage, query))
        assert await storage.compact(200 * 15_000) == 200
        assert snapshot(await run_query(storage, query)) == before
        assert snapshot(await run_query(storage, query, start=1000, end=3_000_000)) == snapshot(
            [make_series({"__name__": "c", "job": "x"}, [s for s in samples if 1000 <= s[0] <= 3_000_000])]
        )
        # a retry of old samples is a no-op; another value for an old timestamp is a conflict
        await storage.write(
            Context(), WriteRequest([make_series({"__name__": "c", "job": "x"}, samples[:10])])
        )
        with pytest.raises(SampleConflict, match="timestamp 15000"):
            await storage.write(
                Context(), WriteRequest([make_series({"__name__": "c", "job": "x"}, [(15_000, 9.5)])])
            )
        # a late sample between compacted ones is merged on read, then into the chunks
        await storage.write(
            Context(), WriteRequest([make_series({"__name__": "c", "job": "x"}, [(7_500, 0.5)])])
        )
        expected = snapshot([make_series({"__name__": "c", "job": "x"}, sorted([*samples, (7_500, 0.5)]))])
        assert snapshot(await run_query(storage, query)) == expected
        assert await storage.compact(400 * 15_000) == 101
        assert snapshot(await run_query(storage, query)) == expected
        await storage.close()

    run(body)
    assert count_rows(path, "rs_samples") == 0
    # 301 samples: chunks of at most 120, the partial first one refilled
    assert count_rows(path, "rs_chunks") == 3


def test_only_the_last_partial_chunk_of_a_series_takes_later_samples(tmp_path: Path) -> None:
    """Chunks cut at 120 then compacted at 480: the full ones stay, the last one grows; none overlap."""
    path = tmp_path / "d.db"
    samples = [(t * 15_000, float(t)) for t in range(600)]
    query = Matcher.parse("__name__", "=", "g")

    async def compact(chunk_samples: int, part: list[tuple[int, float]]) -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}?chunk_samples={chunk_samples}")
        await storage.start()
        await storage.write(Context(), WriteRequest([make_series({"__name__": "g"}, part)]))
        await storage.compact(2**62)
        await storage.close()

    async def body() -> None:
        await compact(120, samples[:300])
        await compact(480, samples[300:])
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        expected = snapshot([make_series({"__name__": "g"}, samples)])
        assert snapshot(await run_query(storage, query)) == expected
        await storage.close()

    run(body)
    with sqlite3.connect(path) as conn:
        chunks = conn.execute("SELECT min_ts, max_ts, count FROM rs_chunks ORDER BY min_ts").fetchall()
    assert [count for _, _, count in chunks] == [120, 120, 360]
    assert all(earlier[1] < later[0] for earlier, later in itertools.pairwise(chunks))


def test_chunks_are_compact(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    counter = make_series({"__name__": "requests_total"}, [(t * 15_000, float(t * 3)) for t in range(1200)])

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        await storage.write(Context(), WriteRequest([counter]))
        await storage.compact(2**62)
        await storage.close()

    run(body)
    with sqlite3.connect(path) as conn:
        (size,) = conn.execute("SELECT sum(length(data)) FROM rs_chunks").fetchone()
    assert size / 1200 < 2.0  # bytes per sample of a steady counter scraped every 15 s


def test_a_compaction_backlog_is_moved_in_jobs_of_bounded_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 series x 50 old rows, about 120 rows a job: the first job spans 16 ids, then 2 series each."""
    from remote_storage.backends import sql_maintenance

    jobs: list[tuple[int, int, int]] = []  # (low, high, rows moved)
    compact_slice = sql_maintenance.compact_slice

    def recorded(conn: Any, low: int, high: int, *args: Any) -> tuple[int, int]:
        moved, written = compact_slice(conn, low, high, *args)
        jobs.append((low, high, moved))
        return moved, written

    monkeypatch.setattr(sql_maintenance, "compact_slice", recorded)
    series = [
        make_series({"__name__": "m", "i": str(i)}, [(t, float(i + t)) for t in range(50)]) for i in range(60)
    ]
    query = Matcher.parse("__name__", "=", "m")

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        await storage.write(Context(), WriteRequest(series))
        before = snapshot(await run_query(storage, query))
        assert await storage.compact(2**62, max_rows=120) == 60 * 50
        assert snapshot(await run_query(storage, query)) == before
        await storage.close()

    run(body)
    assert count_rows(tmp_path / "d.db", "rs_samples") == 0
    assert jobs[0][:2] == (0, 16)  # the first job, before rows per series are known (ids start at 1)
    assert all(moved <= 120 for _, _, moved in jobs[1:]) and len(jobs) > 20
    covered = [series_id for low, high, _ in jobs for series_id in range(low, high)]
    assert covered == list(range(len(covered)))  # every id once, in order


def test_retention_deletes_whole_old_chunks(tmp_path: Path) -> None:
    series = make_series({"__name__": "m"}, [(t, 1.0) for t in range(0, 240_000, 1000)])

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db?chunk_samples=120")
        await storage.start()
        await storage.write(Context(), WriteRequest([series]))
        await storage.compact(2**62)
        assert await storage.apply_retention(130_000) == 120  # the first chunk ends at 119000
        found = await run_query(storage, Matcher.parse("__name__", "=", "m"))
        assert list(found[0].timestamps) == list(range(120_000, 240_000, 1000))
        await storage.close()

    run(body)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 511, 512, 513, 1000, 2001])
def test_sqlite_bulk_insert_covers_every_row_once(tmp_path: Path, count: int) -> None:
    """Multi-row statements of power-of-two sizes insert every row; ignored duplicates are not counted."""
    from sqlalchemy import create_engine

    from remote_storage.backends.sql_dialect import SQLiteDialect

    engine = create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    rows = [(n % 7, n, n * 3) for n in range(count)]
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER, b INTEGER PRIMARY KEY, c INTEGER)")
        dialect = SQLiteDialect()
        assert dialect.insert_ignore_rows(conn, "t", ("a", "b", "c"), rows) == count
        again = [*rows[: count // 2], (0, count + 5, 1)]  # half repeated, one new
        assert dialect.insert_ignore_rows(conn, "t", ("a", "b", "c"), again) == 1
        stored = conn.exec_driver_sql("SELECT a, b, c FROM t ORDER BY b").fetchall()
    engine.dispose()
    assert [tuple(row) for row in stored] == [*rows, (0, count + 5, 1)]


@pytest.mark.parametrize("count", [1, 2, 3, 511, 512, 513, 1000, 2001])
def test_sqlite_bulk_insert_from_columns_covers_every_row_once(tmp_path: Path, count: int) -> None:
    """The same rows given as columns (lists, arrays, memoryviews) insert as given as rows."""
    from array import array

    from sqlalchemy import create_engine

    from remote_storage.backends.sql_dialect import SQLiteDialect

    engine = create_engine(f"sqlite:///{tmp_path / 'columns.db'}")
    rows = [(n % 7, n, n * 3) for n in range(count)]
    columns = (
        [a for a, _, _ in rows],
        array("q", [b for _, b, _ in rows]),
        memoryview(array("q", [c for *_, c in rows])),
    )
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER, b INTEGER PRIMARY KEY, c INTEGER)")
        dialect = SQLiteDialect()
        assert dialect.insert_ignore_columns(conn, "t", ("a", "b", "c"), columns) == count
        assert (
            dialect.insert_ignore_columns(conn, "t", ("a", "b", "c"), ([0, 0], [0, count + 5], [0, 1])) == 1
        )
        stored = conn.exec_driver_sql("SELECT a, b, c FROM t ORDER BY b").fetchall()
    engine.dispose()
    assert [tuple(row) for row in stored] == [*rows, (0, count + 5, 1)]


def test_schema_1_databases_are_upgraded_in_place(sql_storage_url: str) -> None:
    """A database of schema 1 (rows keyed by series and time) opens as the newest schema with every sample."""
    from sqlalchemy import create_engine

    from tests.support import sql_schema2

    stored = [
        make_series({"__name__": "old", "n": str(n)}, [(t * 37_000 - 200_000, t * n / 2) for t in range(40)])
        for n in range(3)
    ]

    async def check(storage: SQLStorage) -> None:
        found = await run_query(storage, Matcher.parse("__name__", "=", "old"))
        assert snapshot(found) == snapshot(stored)

    async def open_and(check: Callable[[SQLStorage], Coroutine[Any, Any, None]]) -> None:
        storage = SQLStorage.from_url(sql_storage_url)
        await storage.start()
        try:
            await check(storage)
        finally:
            await storage.close()

    engine = create_engine(sql_storage_url)
    sql_schema2.create(engine)  # schema 2 as it was, then back to the sample rows of schema 1
    sql_schema2.store(engine, "default", stored)
    without_rowid = " WITHOUT ROWID" if sql_storage_url.startswith("sqlite") else ""
    with engine.begin() as conn:  # back to the layout of schema 1
        conn.exec_driver_sql("CREATE TABLE keep AS SELECT series_id, ts, value FROM rs_samples")
        conn.exec_driver_sql("DROP TABLE rs_samples")
        conn.exec_driver_sql("DROP TABLE rs_generations")
        conn.exec_driver_sql(
            "CREATE TABLE rs_samples (series_id BIGINT NOT NULL, ts BIGINT NOT NULL, value BIGINT NOT NULL, "
            f"CONSTRAINT rs_samples_pkey PRIMARY KEY (series_id, ts)){without_rowid}"
        )
        conn.exec_driver_sql("INSERT INTO rs_samples SELECT series_id, ts, value FROM keep")
        conn.exec_driver_sql("DROP TABLE keep")
        conn.exec_driver_sql("UPDATE rs_meta SET value = '1' WHERE key = 'schema_version'")

    run(lambda: open_and(check))
    with engine.begin() as conn:
        version = conn.exec_driver_sql("SELECT value FROM rs_meta WHERE key = 'schema_version'").scalar_one()
        generations = conn.exec_driver_sql("SELECT count(*) FROM rs_generations").scalar_one()
    engine.dispose()
    assert version == "4"  # upgraded through 2 and 3 to the current schema
    assert generations == len({(t * 37_000 - 200_000) // 60_000 for t in range(40)})


def test_generations_are_forgotten_when_emptied_and_found_again_for_late_samples(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'data.db'}"
    labels = {"__name__": "gen"}
    minute = 60_000

    def generations() -> list[int]:
        engine = create_engine(url)
        with engine.begin() as conn:
            found = [g for (g,) in conn.exec_driver_sql("SELECT generation FROM rs_generations ORDER BY 1")]
        engine.dispose()
        return found

    async def body() -> None:
        storage = SQLStorage.from_url(url)
        await storage.start()
        try:
            first = make_series(labels, [(m * minute, 1.0) for m in range(6)])
            await storage.write(Context(), WriteRequest([first]))
            assert generations() == [0, 1, 2, 3, 4, 5]
            assert await storage.compact(4 * minute) == 4
            assert generations() == [4, 5]
            late = make_series(labels, [(2 * minute + 1, 7.0)])
            await storage.write(Context(), WriteRequest([late]))
            assert generations() == [2, 4, 5]
            [found] = await run_query(storage, Matcher.parse("__name__", "=", "gen"))
            assert list(found.samples()) == [
                (0, 1.0), (minute, 1.0), (2 * minute, 1.0), (2 * minute + 1, 7.0), (3 * minute, 1.0),
                (4 * minute, 1.0), (5 * minute, 1.0),
            ]  # fmt: skip
            assert await storage.apply_retention(5 * minute) == 6
            assert generations() == [5]
        finally:
            await storage.close()

    run(body)


@pytest.mark.postgres
def test_compaction_keeps_rows_another_process_commits_meanwhile(postgres_url: str) -> None:
    """At READ COMMITTED a row committed between compaction's read and its delete stays a row."""
    from sqlalchemy import create_engine, event

    from remote_storage.backends import sql_schema
    from remote_storage.backends.sql_chunks import compact_slice

    labels = {"__name__": "m"}
    query = Matcher.parse("__name__", "=", "m")

    async def write() -> None:
        storage = SQLStorage.from_url(postgres_url)
        await storage.start()
        await storage.write(Context(), WriteRequest([make_series(labels, [(0, 1.0), (60_000, 2.0)])]))
        await storage.close()

    run(write)
    engine = create_engine(SQLStorage.from_url(postgres_url).url)
    committed: list[str] = []
    try:
        with engine.connect() as compacting, engine.connect() as writer:
            (series_id,) = writer.exec_driver_sql("SELECT id FROM rs_series").scalars()
            writer.rollback()

            def late_write(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                if statement.startswith("INSERT INTO rs_chunks") and not committed:
                    with writer.begin():  # another process's write, committed meanwhile
                        writer.exec_driver_sql(
                            "INSERT INTO rs_samples (generation, series_id, ts, value) "
                            "VALUES (%s, %s, %s, %s)",
                            (sql_schema.generation(30_000), series_id, 30_000, sql_schema.signed_bits(1.5)),
                        )
                    committed.append(statement)

            event.listen(compacting, "before_cursor_execute", late_write)
            with compacting.begin():
                assert compact_slice(compacting, 0, series_id + 1, 2**62) == (2, 1)
    finally:
        engine.dispose()
    assert committed

    async def read_back() -> None:
        storage = SQLStorage.from_url(postgres_url)
        await storage.start()
        expected = snapshot([make_series(labels, [(0, 1.0), (30_000, 1.5), (60_000, 2.0)])])
        assert snapshot(await run_query(storage, query)) == expected
        assert await storage.compact(2**62) == 1
        assert snapshot(await run_query(storage, query)) == expected
        await storage.close()

    run(read_back)


def test_a_sample_both_in_a_row_and_in_a_chunk_is_read_once(tmp_path: Path) -> None:
    """What a retry landing on another process while its sample is compacted leaves: one sample."""
    from remote_storage.backends import sql_schema

    path = tmp_path / "d.db"
    samples = [(t * 15_000, float(t)) for t in range(8)]
    query = Matcher.parse("__name__", "=", "m")

    async def write_and_compact() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        await storage.write(Context(), WriteRequest([make_series({"__name__": "m"}, samples)]))
        await storage.compact(2**62)
        await storage.close()

    run(write_and_compact)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT OR IGNORE INTO rs_generations VALUES (?)", (sql_schema.generation(45_000),))
        conn.execute(
            "INSERT INTO rs_samples (generation, series_id, ts, value) SELECT ?, id, ?, ? FROM rs_series",
            (sql_schema.generation(45_000), 45_000, sql_schema.signed_bits(3.0)),
        )

    async def read() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        expected = snapshot([make_series({"__name__": "m"}, samples)])
        assert snapshot(await run_query(storage, query)) == expected
        await storage.compact(2**62)
        assert snapshot(await run_query(storage, query)) == expected
        await storage.close()

    run(read)
    assert count_rows(path, "rs_samples") == 0


@contextlib.asynccontextmanager
async def writer_held(storage: SQLStorage) -> AsyncIterator[None]:
    """Keep the writer thread busy inside the block: writes submitted meanwhile wait in its queue,
    and are taken as one group when the block ends."""
    from remote_storage.backends.sql_writer import Job

    started, release = threading.Event(), threading.Event()

    def hold(conn: Any, job: Any) -> None:
        started.set()
        release.wait(30)

    blocker = storage.writer.submit(Job(hold))
    try:
        assert await asyncio.to_thread(started.wait, 30)
        yield
    finally:
        release.set()
        await asyncio.wrap_future(blocker)


def next_submission(storage: SQLStorage) -> asyncio.Event:
    """An event set once a job reaches the writer's queue (from the event loop, where writes submit)."""
    writer = storage.writer
    queued = asyncio.Event()
    submit = writer.submit

    def submit_and_tell(job: Any) -> Any:
        future = submit(job)
        queued.set()
        return future

    writer.submit = submit_and_tell  # type: ignore[method-assign]
    return queued


def test_a_write_cancelled_while_queued_is_left_out_and_the_writer_goes_on(tmp_path: Path) -> None:
    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path}/d.db")
        await storage.start()
        try:
            async with writer_held(storage):
                queued = next_submission(storage)
                cancelled = asyncio.create_task(
                    storage.write(Context(), WriteRequest([make_series({"__name__": "gone"}, [(1, 1.0)])]))
                )
                await asyncio.wait_for(queued.wait(), timeout=30)  # waiting in the queue, not yet taken
                cancelled.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await cancelled
            kept = make_series({"__name__": "kept"}, [(2, 2.0)])
            await asyncio.wait_for(storage.write(Context(), WriteRequest([kept])), timeout=30)
            everything = Matcher.parse("__name__", "=~", ".+")
            assert snapshot(await run_query(storage, everything)) == snapshot([kept])
            assert storage.writer.is_alive()
        finally:
            await storage.close()

    run(body)


@pytest.mark.postgres
def test_a_group_postgresql_aborts_for_a_deadlock_runs_again(postgres_url: str) -> None:
    """Writes grouped with a transaction PostgreSQL aborted (SQLSTATE 40P01) are stored, not failed."""
    from remote_storage.backends.sql_writer import Job

    attempts: list[int] = []

    def deadlocked_once(conn: Any, job: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:  # what PostgreSQL raises in the transaction it picks to break a deadlock
            conn.exec_driver_sql("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")

    async def body() -> None:
        storage = SQLStorage.from_url(postgres_url)
        await storage.start()
        try:
            new_series = make_series({"__name__": "new", "n": "1"}, [(5, 0.5)])
            async with writer_held(storage):  # both queued: they run in one group
                queued = next_submission(storage)
                write = asyncio.create_task(storage.write(Context(), WriteRequest([new_series])))
                await asyncio.wait_for(queued.wait(), timeout=30)
                failing = storage.writer.submit(Job(deadlocked_once))
            await asyncio.wait_for(asyncio.wrap_future(failing), timeout=30)
            await asyncio.wait_for(write, timeout=30)
            assert len(attempts) == 2
            found = await run_query(storage, Matcher.parse("__name__", "=", "new"))
            assert snapshot(found) == snapshot([new_series])
            # The series id made by the aborted transaction is forgotten: the next write finds the stored one.
            again = make_series({"__name__": "new", "n": "1"}, [(6, 0.75)])
            await storage.write(Context(), WriteRequest([again]))
            (series,) = await run_query(storage, Matcher.parse("__name__", "=", "new"))
            assert list(series.timestamps) == [5, 6]
        finally:
            await storage.close()

    run(body)


def test_regex_matching_stops_at_the_read_deadline(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{tmp_path / 'deadline.db'}")
        await storage.start()
        try:
            await storage.write(
                Context(),
                WriteRequest(
                    [make_series({"__name__": "up", "job": f"j{i}"}, [(1000, 1.0)]) for i in range(50)]
                ),
            )
            with storage.read_engine.connect() as conn:
                matchers = [Matcher.parse("job", "=~", "j1.*")]
                assert len(select_series(conn, "default", matchers, time.monotonic() + 60)) == 11
                with pytest.raises(TimeoutError, match="deadline"):
                    select_series(conn, "default", matchers, time.monotonic() - 1)
        finally:
            await storage.close()

    asyncio.run(scenario())
