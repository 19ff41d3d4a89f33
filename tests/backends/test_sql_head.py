"""The SQL backend's sample rows (backends/sql_head.py): the C functions that insert and read them
on SQLite, reads of many series, and the migration of a schema-2 database."""

from __future__ import annotations

import asyncio
import sqlite3
from array import array
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from remote_storage import native
from remote_storage.backends import sql_dialect
from remote_storage.backends import sql_maintenance as maintenance
from remote_storage.backends.sql import SQLStorage
from remote_storage.backends.sql_dialect import DIALECTS
from remote_storage.backends.sql_head import (
    collected,
    has_c_functions,
    head_chunks,
    head_rows,
    insert_rows,
    seal,
)
from remote_storage.backends.sql_schema import encode_labels, generation, generations_in, open_schema
from remote_storage.chunks import decode_chunk, encode_for_storage, split_into_chunks
from remote_storage.errors import SampleConflict
from remote_storage.matchers import Matcher
from remote_storage.protocol.streamed import chunks_of
from remote_storage.storage import Context, Labels, Query, WriteRequest
from remote_storage.testing import BackendConformance, make_series, run_query, snapshot

MIN_TIME, MAX_TIME = -(2**63), 2**63 - 1

#: The layout schema 2 created on SQLite, frozen here: the migration must take a database made
#: by an older release, whatever the current code creates.
SCHEMA_2_SQLITE = """
CREATE TABLE rs_meta ("key" TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE rs_series (id INTEGER NOT NULL, tenant TEXT NOT NULL, labels BLOB NOT NULL,
    PRIMARY KEY (id), CONSTRAINT rs_series_tenant_labels UNIQUE (tenant, labels));
CREATE TABLE rs_postings (tenant TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    series_id BIGINT NOT NULL, PRIMARY KEY (tenant, name, value, series_id)) WITHOUT ROWID;
CREATE TABLE rs_samples (generation BIGINT NOT NULL, series_id BIGINT NOT NULL, ts BIGINT NOT NULL,
    value BIGINT NOT NULL, PRIMARY KEY (generation, series_id, ts)) WITHOUT ROWID;
CREATE TABLE rs_generations (generation BIGINT NOT NULL, PRIMARY KEY (generation)) WITHOUT ROWID;
CREATE TABLE rs_chunks (series_id BIGINT NOT NULL, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL,
    count INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (series_id, min_ts)) WITHOUT ROWID;
CREATE TABLE rs_histograms (series_id BIGINT NOT NULL, ts BIGINT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
CREATE TABLE rs_exemplars (series_id BIGINT NOT NULL, ts BIGINT NOT NULL, value BIGINT NOT NULL,
    labels BLOB NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
CREATE TABLE rs_metadata (tenant TEXT NOT NULL, family TEXT NOT NULL, type SMALLINT NOT NULL,
    help TEXT NOT NULL, unit TEXT NOT NULL, PRIMARY KEY (tenant, family));
INSERT INTO rs_meta VALUES ('format', 'prometheus-remote-storage'), ('schema_version', '2');
"""

STALE = 0x7FF0000000000002  # Prometheus' stale marker: a NaN with a payload
NAN_PAYLOAD = 0x7FF8000000000123
NEGATIVE_ZERO = -(2**63)


def _bits(value: float) -> int:
    return array("q", array("d", [value]).tobytes())[0]


def _float(bits: int) -> float:
    return array("d", array("q", [bits]).tobytes())[0]


def _native_built() -> bool:
    return native.IMPLEMENTATION == "c" and native.sql_head is not None


def test_a_schema_2_database_reads_back_bit_exact_after_migration(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_2_SQLITE)
    # Per tenant, series -> {timestamp: value bits}; some compacted into chunks, some rows late.
    expected: dict[str, dict[Labels, dict[int, int]]] = {}
    watermark = 600_000
    series_id = 0
    for tenant in ("default", "team-a", "team-b"):
        for n in range(4):
            series_id += 1
            labels = Labels.from_mapping({"__name__": "m", "n": str(n), "tenant_label": tenant})
            db.execute("INSERT INTO rs_series VALUES (?, ?, ?)", (series_id, tenant, encode_labels(labels)))
            db.executemany(
                "INSERT INTO rs_postings VALUES (?, ?, ?, ?)", [(tenant, k, v, series_id) for k, v in labels]
            )
            samples = {ts: _bits(series_id * 1000.0 + ts / 7) for ts in range(-45_000, 1_200_000, 15_000)}
            samples[300_000] = STALE
            samples[315_000] = NAN_PAYLOAD
            samples[900_000] = STALE
            samples[915_000] = NAN_PAYLOAD
            samples[930_000] = NEGATIVE_ZERO
            old = sorted(ts for ts in samples if ts < watermark and ts % 45_000)  # chunked
            late = sorted(ts for ts in samples if ts < watermark and not ts % 45_000)  # rows, late
            values = array("d", array("q", [samples[ts] for ts in old]).tobytes())
            for chunk in split_into_chunks(old, values, 7, encode=encode_for_storage):
                db.execute(
                    "INSERT INTO rs_chunks VALUES (?, ?, ?, ?, ?)",
                    (series_id, chunk.min_time, chunk.max_time, chunk.count, chunk.data),
                )
            rows = [ts for ts in samples if ts >= watermark] + late
            db.executemany(
                "INSERT INTO rs_samples VALUES (?, ?, ?, ?)",
                [(generation(ts), series_id, ts, samples[ts]) for ts in rows],
            )
            db.executemany(
                "INSERT OR IGNORE INTO rs_generations VALUES (?)", [(generation(ts),) for ts in rows]
            )
            expected.setdefault(tenant, {})[labels] = samples
    db.execute("INSERT INTO rs_meta VALUES ('compacted_before', ?)", (str(watermark),))
    db.commit()
    db.close()

    async def check() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            for tenant, by_labels in expected.items():
                found = await run_query(storage, Matcher.parse("__name__", "=", "m"), ctx=Context(tenant))
                wanted = [
                    make_series(labels, [(ts, _float(b)) for ts, b in sorted(samples.items())])
                    for labels, samples in sorted(by_labels.items())
                ]
                assert snapshot(found) == snapshot(wanted)
                # only the head's range: rows alone
                found = await run_query(
                    storage, Matcher.parse("n", "=", "1"), start=880_000, end=940_000, ctx=Context(tenant)
                )
                assert [list(s.timestamps) for s in found] == [[885_000, 900_000, 915_000, 930_000]]
                assert [_bits(v) for v in found[0].values][1:] == [STALE, NAN_PAYLOAD, NEGATIVE_ZERO]
        finally:
            await storage.close()

    asyncio.run(check())
    with sqlite3.connect(path) as db:
        (version,) = db.execute("SELECT value FROM rs_meta WHERE key = 'schema_version'").fetchone()
    assert version == "4"  # through 3 (the head) to 4 (the series index)


@pytest.mark.skipif(not _native_built(), reason="the C extension _sql_head was not built")
def test_sqlite_connections_get_the_c_functions(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'data.db'}")
    dialect = DIALECTS["sqlite"]
    writer, readers = dialect.create_engines(str(engine.url), pool_size=1, synchronous="full")
    open_schema(writer, dialect, "test")
    for used in (writer, readers):
        with used.connect() as conn:
            assert has_c_functions(conn)
    writer.dispose()
    readers.dispose()


@pytest.mark.skipif(not _native_built(), reason="the C extension _sql_head was not built")
def test_rs_collect_returns_the_rows_with_data_as_one_blob_in_order() -> None:
    conn = sqlite3.connect(":memory:")
    assert native.sql_head is not None and native.sql_head.install(conn)
    conn.execute("CREATE TABLE t (n INTEGER, id INTEGER, data BLOB, a INTEGER, b INTEGER)")
    rows = [
        (1, 7, b"\x01\x02", -(2**63), 2**63 - 1),
        (2, -3, None, 0, 0),  # no data: left out
        (3, 9, b"", 1, 1),  # empty: left out
        (4, 2**40, bytes(range(256)) * 300, 5, -5),
        (5, 7, b"\xff", 0, 1),
    ]
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    statement = "SELECT rs_collect(id, data{}) FROM (SELECT * FROM t ORDER BY n)"
    kept = [row for row in rows if row[2]]
    assert collected(conn.execute(statement.format("")).fetchall()) == [(i, d) for _, i, d, _, _ in kept]
    assert collected(conn.execute(statement.format(", a, b")).fetchall(), 2) == [row[1:] for row in kept]
    assert conn.execute("SELECT rs_collect(id, data) FROM t WHERE n > 9").fetchall() == [(b"",)]
    with pytest.raises(sqlite3.OperationalError, match="rs_collect"):
        conn.execute("SELECT rs_collect(id) FROM t").fetchall()


@pytest.mark.parametrize("many", [False, True])
def test_inserted_rows_read_back_in_time_order_per_series(sql_storage_url: str, many: bool) -> None:
    """Both ways of inserting and reading (C functions on SQLite, plain SQL elsewhere), and both
    read plans (seeks for a few scattered ids, a range scan for many close together)."""
    dialect = DIALECTS["sqlite" if sql_storage_url.startswith("sqlite") else "postgresql"]
    writer, readers = dialect.create_engines(sql_storage_url, pool_size=1, synchronous="full")
    open_schema(writer, dialect, "test")
    ids = list(range(1, 301))
    # Out of order within a batch, negative timestamps, several generations, duplicates ignored.
    timestamps = [-61_000 + (i * 7919) % 300_000 for i in ids]
    bits = [_bits(i / 3) if i % 5 else STALE for i in ids]
    with writer.connect() as conn, conn.begin():
        assert insert_rows(conn, ids, timestamps, bits) == len(ids)
        assert insert_rows(conn, ids[:10], timestamps[:10], bits[:10]) == 0
        assert insert_rows(conn, ids, [t + 1 for t in timestamps], bits) == len(ids)
    wanted = ids if many else ids[::37]
    with readers.connect() as conn, conn.begin():
        generations = sorted({generation(t) for t in timestamps} | {generation(t + 1) for t in timestamps})
        found = head_rows(conn, wanted, -(2**62), 2**62, generations)
        trimmed = head_rows(conn, wanted, 0, 100_000, generations)
    writer.dispose()
    readers.dispose()
    assert sorted(found) == wanted
    for i in wanted:
        t, b = timestamps[i - 1], bits[i - 1]
        assert (list(found[i][0]), list(found[i][1])) == ([t, t + 1], [b, b])
        inside = [x for x in (t, t + 1) if 0 <= x <= 100_000]
        assert list(trimmed.get(i, ((), ()))[0]) == inside


class SealingStorage(SQLStorage):
    """Seals every row into blocks after each write: the suite then runs on sealed head data,
    and each later write meets the blocks (repeats, conflicts, late samples)."""

    async def write(self, ctx: Context, request: WriteRequest) -> None:
        await super().write(ctx, request)
        await self.seal(2**62)


class TestSQLiteSealedConformance(BackendConformance):
    storage_factory = "tests.backends.test_sql_head:SealingStorage.from_url"

    def storage_url(self) -> str:
        return f"sqlite:///{self.tmp_path}/data.db"


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


@pytest.mark.skipif(not _native_built(), reason="the C extension _sql_head was not built")
def test_a_backlog_is_sealed_in_jobs_of_bounded_rows_and_skips_what_compaction_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.db"
    # 4 series, a sample every 15 s for 30 minutes: a sender catching up sends it all at once
    samples = {n: [(t * 15_000, float(n * 1000 + t)) for t in range(120)] for n in range(4)}
    series = [make_series({"__name__": "s", "n": str(n)}, samples[n]) for n in range(4)]
    newest = 119 * 15_000

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            await storage.write(Context(), WriteRequest(series))
            jobs: list[int] = []
            submit = storage.writer.submit

            def counting(job: Any) -> Any:
                jobs.append(1)
                return submit(job)

            storage.writer.submit = counting  # type: ignore[method-assign]
            # minutes 10 to 27 sealed (28 and 29 stay rows; 0 to 9 are left to compaction),
            # 16 rows per minute, at most one minute past 20 rows per job
            monkeypatch.setattr(maintenance, "SEAL_ROWS", 20)
            sealed = await storage.seal(newest, 10 * 60_000)
            storage.writer.submit = submit  # type: ignore[method-assign]
            assert sealed == 18 * 16
            assert len(jobs) == 9  # two minutes a job
            assert _count(path, "rs_blocks") == 2 * 4  # minutes 10-15 and 16-27: blocks of 16 minutes
            assert _count(path, "rs_samples") == (10 + 2) * 16
            found = await run_query(storage, Matcher.parse("__name__", "=", "s"))
            assert snapshot(found) == snapshot(series)
        finally:
            await storage.close()

    asyncio.run(body())


@pytest.mark.skipif(not _native_built(), reason="the C extension _sql_head was not built")
def test_sealed_rows_keep_their_samples_and_rules_through_compaction_and_retention(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    minute = 60_000
    # 3 series, a sample every 15 s for 10 minutes, a stale marker among them
    samples = {n: [(t * 15_000, float(n * 100 + t)) for t in range(40)] for n in range(3)}
    samples[1][5] = (samples[1][5][0], _float(STALE))
    series = [make_series({"__name__": "s", "n": str(n)}, samples[n]) for n in range(3)]

    async def body() -> None:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            await storage.write(Context(), WriteRequest(series))
            sealed = await storage.seal(39 * 15_000)
            # the newest two minutes (8 and 9) stay rows
            assert sealed == 3 * 32
            assert _count(path, "rs_samples") == 3 * 8
            assert _count(path, "rs_blocks") == 3  # minutes 0 to 7: one block a series
            found = await run_query(storage, Matcher.parse("__name__", "=", "s"))
            assert snapshot(found) == snapshot(series)
            found = await run_query(storage, Matcher.parse("n", "=", "1"), start=61_000, end=150_000)
            assert [list(s.timestamps) for s in found] == [
                [75_000, 90_000, 105_000, 120_000, 135_000, 150_000]
            ]
            # a repeat of a sealed sample is a no-op; another value for it is refused
            await storage.write(Context(), WriteRequest(series))
            changed = make_series({"__name__": "s", "n": "2"}, [(30_000, 1.5)])
            with pytest.raises(SampleConflict):
                await storage.write(Context(), WriteRequest([changed]))
            # a late sample in a sealed minute is a row until the next seal merges it
            late = make_series({"__name__": "s", "n": "0"}, [(20_000, 7.0)])
            await storage.write(Context(), WriteRequest([late]))
            assert _count(path, "rs_samples") == 3 * 8 + 1
            await storage.seal(39 * 15_000)
            assert _count(path, "rs_samples") == 3 * 8
            expected = [make_series(series[0].labels, sorted([*samples[0], (20_000, 7.0)])), *series[1:]]
            found = await run_query(storage, Matcher.parse("__name__", "=", "s"))
            assert snapshot(found) == snapshot(expected)
            # retention in the middle of a sealed minute keeps the rest of its block
            assert await storage.apply_retention(2 * minute + 20_000) == 3 * 10 + 1
            # compaction takes blocks and rows; a cutoff inside a minute splits its blocks
            assert await storage.compact(5 * minute + 20_000) == 3 * (22 - 10)
            found = await run_query(storage, Matcher.parse("__name__", "=", "s"))
            assert snapshot(found) == snapshot(
                [
                    make_series(s.labels, [p for p in samples[n] if p[0] >= 2 * minute + 20_000])
                    for n, s in enumerate(series)
                ]
            )
            assert await storage.compact(2**62) == 3 * (40 - 22)
            assert _count(path, "rs_blocks") == 0
            assert _count(path, "rs_samples") == 0
            found = await run_query(storage, Matcher.parse("__name__", "=", "s"))
            assert snapshot(found) == snapshot(
                [
                    make_series(s.labels, [p for p in samples[n] if p[0] >= 2 * minute + 20_000])
                    for n, s in enumerate(series)
                ]
            )
        finally:
            await storage.close()

    asyncio.run(body())
    assert _count(path, "rs_generations") == 0


class TestSQLiteWithoutCConformance(BackendConformance):
    """SQLite with the C functions missing (no compiler at install time): plain statements."""

    @pytest.fixture(autouse=True)
    def _without_c(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sql_dialect, "_install_native_head", lambda connection: False)

    def storage_url(self) -> str:
        return f"sqlite:///{self.tmp_path}/data.db"


@pytest.mark.skipif(not _native_built(), reason="the C extension _sql_head was not built")
def test_blocks_sealed_in_c_read_the_same_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.db"
    series = [
        make_series({"__name__": "s", "n": str(n)}, [(t * 15_000 - 90_000, float(t * n)) for t in range(30)])
        for n in range(5)
    ]
    late = make_series({"__name__": "s", "n": "3"}, [(-80_000, 2.5)])

    async def read(seal: bool) -> list[object]:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            if seal:
                await storage.write(Context(), WriteRequest(series))
                assert await storage.seal(2**62) == 150
                await storage.write(Context(), WriteRequest([late]))  # a row in a sealed minute
            whole = await run_query(storage, Matcher.parse("__name__", "=", "s"))
            part = await run_query(storage, Matcher.parse("n", "=~", "[13]"), start=-85_000, end=100_000)
            return [snapshot(whole), snapshot(part)]
        finally:
            await storage.close()

    with_c = asyncio.run(read(True))
    monkeypatch.setattr(sql_dialect, "_install_native_head", lambda connection: False)
    assert asyncio.run(read(False)) == with_c
    assert [len(ts) for _, ts, _, _ in with_c[1]] == [12, 13]


def _decoded_bits(chunks: list[Any]) -> tuple[list[int], list[int]]:
    """The samples of chunks, concatenated: timestamps and value bits."""
    timestamps: list[int] = []
    bits: list[int] = []
    for chunk in chunks:
        ts, values = decode_chunk(chunk.data)
        assert (chunk.min_time, chunk.max_time) == (ts[0], ts[-1])
        timestamps.extend(ts)
        bits.extend(array("q", values.tobytes()))
    return timestamps, bits


@pytest.mark.skipif(not _native_built(), reason="the C extension _sql_head was not built")
def test_head_chunks_hold_the_merged_head_samples_bit_exact_with_and_without_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rs_chunks: blocks and late rows merged, a range cut inside a block, more samples than a
    chunk takes, NaN payloads and -0.0; the Python path reads the same database into the same
    bytes."""
    url = f"sqlite:///{tmp_path / 'data.db'}"
    dialect = DIALECTS["sqlite"]
    ids = [1, 2, 3]
    # a sample every 5 s for 10 minutes; odd multiples of 15 s held back to arrive late
    everything = {i: {t: _bits(i * 1000 + t / 3) for t in range(0, 600_000, 5_000)} for i in ids}
    for i in ids:
        everything[i][20_000] = STALE
        everything[i][25_000] = NAN_PAYLOAD
        everything[i][250_000] = NEGATIVE_ZERO
    late = {(i, t) for i in ids for t in everything[i] if t % 30_000 == 15_000 and t < 480_000}
    writer, readers = dialect.create_engines(url, pool_size=1, synchronous="full")
    open_schema(writer, dialect, "test")
    on_time = [(i, t, b) for i in ids for t, b in everything[i].items() if (i, t) not in late]
    with writer.connect() as conn, conn.begin():
        insert_rows(conn, *map(list, zip(*on_time, strict=True)))
        assert seal(conn, 0, 100, generation(480_000))[0] == len([r for r in on_time if r[1] < 480_000])
        late_rows = sorted(late)
        insert_rows(
            conn,
            [i for i, _ in late_rows],
            [t for _, t in late_rows],
            [everything[i][t] for i, t in late_rows],
        )
    start, end = 97_500, 2**62  # inside the first block read

    def read() -> tuple[dict[int, Any], dict[int, Any]]:
        with readers.connect() as conn, conn.begin():
            generations = generations_in(conn, start, end)
            return (
                head_chunks(conn, [*ids, 99], start, end, generations, 7),
                head_rows(conn, [*ids, 99], start, end, generations),
            )

    with_c, rows = read()
    assert sorted(with_c) == sorted(rows) == ids
    for i in ids:
        wanted = sorted(t for t in everything[i] if start <= t <= end)
        assert _decoded_bits(with_c[i]) == (wanted, [everything[i][t] for t in wanted])
        assert (list(rows[i][0]), list(rows[i][1])) == _decoded_bits(with_c[i])
        assert [c.count for c in with_c[i]] == [7] * (len(wanted) // 7) + [len(wanted) % 7]
        assert with_c[i] == split_into_chunks(rows[i][0], array("d", rows[i][1].tobytes()), 7)
    writer.dispose()
    readers.dispose()
    monkeypatch.setattr(sql_dialect, "_install_native_head", lambda connection: False)
    writer, readers = dialect.create_engines(url, pool_size=1, synchronous="full")
    without_c, _ = read()
    writer.dispose()
    readers.dispose()
    assert without_c == with_c


def test_head_chunks_refuse_a_chunk_size_out_of_range(tmp_path: Path) -> None:
    dialect = DIALECTS["sqlite"]
    writer, readers = dialect.create_engines(
        f"sqlite:///{tmp_path / 'data.db'}", pool_size=1, synchronous="full"
    )
    open_schema(writer, dialect, "test")
    with readers.connect() as conn, conn.begin():
        for size in (0, 65536):
            with pytest.raises(ValueError, match="max_samples"):
                head_chunks(conn, [1], 0, 1, [0], size)
    writer.dispose()
    readers.dispose()


@pytest.mark.parametrize("native_head", [True, False])
def test_a_streamed_read_merges_late_head_samples_with_compacted_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_head: bool
) -> None:
    """Head samples inside the span of compacted chunks are handed over as samples, not chunks
    (chunks must not overlap); later ones as chunks after the compacted ones."""
    if native_head and not _native_built():
        pytest.skip("the C extension _sql_head was not built")
    if not native_head:
        monkeypatch.setattr(sql_dialect, "_install_native_head", lambda connection: False)
    path = tmp_path / "data.db"
    older = [(t * 15_000, float(t)) for t in range(40)]
    newer = [(t * 15_000, float(t)) for t in range(40, 60)]
    series = [make_series({"__name__": "s", "n": str(n)}, older) for n in range(2)]

    async def body() -> list[list[tuple[int, float]]]:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            await storage.write(Context(), WriteRequest(series))
            assert await storage.compact(2**62) == 80
            late = make_series(series[0].labels, [(20_000, 0.5)])  # between compacted samples
            await storage.write(
                Context(), WriteRequest([late, *(make_series(s.labels, newer) for s in series)])
            )
            await storage.seal(2**62)
            query = Query(MIN_TIME, MAX_TIME, (Matcher.parse("__name__", "=", "s"),), accept_chunks=True)
            found = [s async for s in storage.process_query(Context(), query)]
            assert [len(s.timestamps) for s in found] == [21, 0]
            answered = []
            for one in found:
                chunks = chunks_of(one, MIN_TIME, MAX_TIME)
                answered.append([p for c in chunks for p in zip(*decode_chunk(c.data), strict=True)])
            return answered
        finally:
            await storage.close()

    merged = sorted([*older, (20_000, 0.5), *newer])
    assert asyncio.run(body()) == [merged, sorted([*older, *newer])]
