"""The compressed series index of SQLite (backends/sql_postings.py, the varints of sql_index.py,
backends/_sql_index.c): C and Python twins agree, and postings rows stay bounded."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path

import pytest

from remote_storage import native
from remote_storage.backends import sql_dialect, sql_postings
from remote_storage.backends.sql import SQLStorage
from remote_storage.backends.sql_index import pack_pairs, python_unpack_pairs
from remote_storage.backends.sql_postings import POSTING_IDS, decode_ids, encode_ids
from remote_storage.matchers import Matcher
from remote_storage.storage import Context, WriteRequest
from remote_storage.testing import BackendConformance, make_series, run_query, snapshot


def _native_built() -> bool:
    return native.IMPLEMENTATION == "c" and native.sql_index is not None


needs_c = pytest.mark.skipif(not _native_built(), reason="the C extension _sql_index was not built")

#: Blobs any decoder may meet: well formed, empty, an unfinished varint at the end, varints longer
#: than 64 bits, sums past 2**63.
AWKWARD_BLOBS = [
    b"",
    b"\x01\x02\x7f",
    b"\x80",
    b"\x05\xff\xff",
    b"\xff" * 9 + b"\x01",
    b"\xff" * 12 + b"\x7f\x03",
    b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01" * 3,
    random.Random(7).randbytes(4000),
]


def test_ids_and_pairs_round_trip() -> None:
    generator = random.Random(3)
    for _ in range(200):
        ids = sorted(generator.sample(range(1, 1 << 40), generator.randrange(1, 50)))
        assert decode_ids(ids[0], encode_ids(ids[0], ids[1:])) == ids
        pairs = [generator.randrange(1, 1 << 33) for _ in range(generator.randrange(0, 30))]
        assert python_unpack_pairs(pack_pairs(pairs)) == pairs
    assert len(pack_pairs([5, 6, 7, 3])) == 4  # one byte per pair when ids are close


@needs_c
def test_unpack_pairs_in_c_is_its_python_twin() -> None:
    assert native.sql_index is not None
    generator = random.Random(5)
    blobs = [*AWKWARD_BLOBS, *(pack_pairs(generator.sample(range(1 << 31), 12)) for _ in range(100))]
    for blob in blobs:
        assert native.sql_index.unpack_pairs(blob) == python_unpack_pairs(blob), blob[:20]


def _connection(c_functions: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    assert sql_postings.install(conn, c_functions) is c_functions
    conn.execute("CREATE TABLE p (pair_id INTEGER, first_id INTEGER, ids BLOB)")
    return conn


@needs_c
def test_rs_posting_ids_in_c_gives_the_ids_of_its_python_twin() -> None:
    rows = [(n, first, blob) for n, blob in enumerate(AWKWARD_BLOBS) for first in (1, 2**63 - 3, -5)]
    rows.append((99, None, b"\x01"))
    answers = []
    for c_functions, query in (
        (True, "SELECT p.pair_id, e.id FROM p JOIN rs_posting_ids(p.first_id, p.ids) AS e"),
        (
            False,
            "SELECT p.pair_id, e.value FROM p JOIN json_each(rs_posting_ids_json(p.first_id, p.ids)) AS e",
        ),
    ):
        conn = _connection(c_functions)
        conn.executemany("INSERT INTO p VALUES (?, ?, ?)", rows)
        answers.append(conn.execute(query).fetchall())
        conn.close()
    assert answers[0] == answers[1]
    assert len(answers[0]) > 4000
    expected = [(n, i) for n, first, blob in rows if first is not None for i in decode_ids(first, blob)]
    assert answers[0] == expected


def _postings(path: Path) -> list[tuple[int, int, bytes]]:
    with sqlite3.connect(path) as conn:
        return [
            (pair_id, first_id, bytes(ids))
            for pair_id, first_id, ids in conn.execute(
                "SELECT pair_id, first_id, ids FROM rs_postings ORDER BY pair_id, first_id"
            )
        ]


def test_postings_rows_hold_at_most_their_bound_and_list_every_series(tmp_path: Path) -> None:
    """Writes of new series, in several requests, fill a pair's last row up to POSTING_IDS ids and
    then start new ones; every series is found by every one of its pairs."""
    path = tmp_path / "d.db"
    batches = [range(0, 300), range(300, 700), range(700, 701), range(701, 1400)]

    async def body() -> list[int]:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            for batch in batches:
                labels = [{"__name__": "m", "odd": str(i % 2), "i": str(i)} for i in batch]
                series = [make_series(one, [(1000, 1.0)]) for one in labels]
                await storage.write(Context(), WriteRequest(series))
            odd = (Matcher.parse("odd", "=", "1"), Matcher.parse("__name__", "=", "m"))
            found = await run_query(storage, *odd)
            return sorted(int(s.labels.get("i")) for s in found)
        finally:
            await storage.close()

    assert asyncio.run(body()) == list(range(1, 1400, 2))
    rows = _postings(path)
    by_pair: dict[int, list[int]] = {}
    for pair_id, first_id, ids in rows:
        decoded = decode_ids(first_id, ids)
        assert len(decoded) <= POSTING_IDS
        by_pair.setdefault(pair_id, []).extend(decoded)
    lengths = sorted(len(ids) for ids in by_pair.values())
    assert lengths == [1] * 1400 + [700, 700, 1400]
    for ids in by_pair.values():
        assert ids == sorted(set(ids))
    assert len(rows) == 1400 + 2 * 2 + 3  # 700 ids take two rows, 1400 three


def test_reads_answer_alike_with_and_without_the_c_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.db"
    series = [
        make_series({"__name__": f"s{n % 3}", "n": str(n), "even": str(n % 2 == 0)}, [(1000, float(n))])
        for n in range(1200)
    ]
    selections = [
        (Matcher.parse("__name__", "=", "s1"),),
        (Matcher.parse("even", "!=", "True"), Matcher.parse("__name__", "=~", "s[02]")),
        (Matcher.parse("n", "=~", "1.?"),),
        (Matcher.parse("missing", "=", ""), Matcher.parse("n", "!~", "1.*")),
    ]

    async def read(write: bool) -> list[object]:
        storage = SQLStorage.from_url(f"sqlite:///{path}")
        await storage.start()
        try:
            if write:
                await storage.write(Context(), WriteRequest(series))
            return [snapshot(await run_query(storage, *matchers)) for matchers in selections]
        finally:
            await storage.close()

    with_c = asyncio.run(read(True))
    monkeypatch.setattr(
        sql_dialect, "_install_postings", lambda connection: sql_postings.install(connection, False)
    )
    assert asyncio.run(read(False)) == with_c
    assert [len(found) for found in with_c] == [400, 400, 11, 1200 - 311]
    assert json.loads(sql_postings._posting_ids_json(7, encode_ids(7, [9, 300]))) == [7, 9, 300]


class TestSQLiteWithoutCPostingsConformance(BackendConformance):
    """SQLite whose connections have the Python twin of ``rs_posting_ids`` only."""

    @pytest.fixture(autouse=True)
    def _without_c(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(
            sql_dialect, "_install_postings", lambda connection: sql_postings.install(connection, False)
        )

    def storage_url(self) -> str:
        return f"sqlite:///{self.tmp_path}/data.db"
