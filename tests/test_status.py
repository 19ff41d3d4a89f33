"""The status page and the data behind it: ingestion history, recent errors, cardinality."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from remote_storage.backends.memory import MemoryStorage
from remote_storage.config import Settings
from remote_storage.recent import IngestHistory, RecentErrors
from remote_storage.server import create_app
from remote_storage.status import count_series
from remote_storage.storage import Labels
from tests.support.wire import V1_HEADERS, series, v1_body


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ingest_history_counts_per_interval_and_forgets_what_is_older_than_its_span() -> None:
    clock = Clock(1000.0)
    history = IngestHistory(interval=10.0, span=60.0, clock=clock)
    history.add(100)
    clock.now += 10
    history.add(200)
    history.add(100)
    clock.now += 10  # the last complete intervals: 100, then 300
    points = history.points()
    assert len(points) == 6
    assert [rate for _, rate in points[-3:]] == [10.0, 30.0, 0.0]
    assert points[-1][0] == 1020.0
    assert history.rate(20.0) == 30.0  # the running interval (0 s in) and the one before: 300 / 10 s
    clock.now += 5
    assert history.rate(30.0) == 400 / 25  # two whole intervals and 5 s of the running one
    assert history.rate(600.0) == 400 / 25  # never before the history started
    clock.now += 1000  # everything aged out
    assert all(rate == 0.0 for _, rate in history.points())


def test_recent_errors_keep_the_newest_and_cut_long_messages() -> None:
    errors = RecentErrors(size=3, clock=Clock())
    for i in range(5):
        errors.add("write", 400, "invalid", f"error {i} " + "x" * 1000, "t", "127.0.0.1")
    kept = errors.list()
    assert [e.message[:7] for e in kept] == ["error 4", "error 3", "error 2"]
    assert all(len(e.message) <= RecentErrors.MESSAGE_CHARS + 3 for e in kept)


def test_cardinality_top_lists() -> None:
    found = count_series(
        [
            Labels((("__name__", "up"), ("job", "a"))),
            Labels((("__name__", "up"), ("job", "b"))),
            Labels((("__name__", "load"), ("job", "a"), ("zone", "eu"))),
        ],
        limit=2,
    )
    assert found.series == 3
    assert found.by_metric_name == [("up", 2), ("load", 1)]
    assert found.values_by_label_name == [("__name__", 2), ("job", 2)]  # ties by name
    assert found.by_label_pair == [("__name__=up", 2), ("job=a", 2)]
    assert found.bytes_by_label_name[0] == ("__name__", 6)


VOID = {"meta", "link", "br", "img", "input", "hr"}


class Cells(HTMLParser):
    """The text of every element with an id, and the rows of every table with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._stack: list[str | None] = []  # the id of every open element, None for those without
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag == "table" and ident:
            self._table = ident
            self.rows[ident] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self._stack.append(ident)
        if ident:
            self.text[ident] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self._stack:
            self._stack.pop()
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._table and self._row:
            self.rows[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        for ident in self._stack:
            if ident:
                self.text[ident] += data
        if self._cell is not None:
            self._cell.append(data)


def page_cells(document: str) -> Cells:
    cells = Cells()
    cells.feed(document)
    return cells


def test_page_shows_what_the_json_and_the_store_hold() -> None:
    async def scenario() -> None:
        app = create_app(MemoryStorage(), Settings(max_labels_per_series=3))
        async with TestClient(TestServer(app)) as client:
            data = [series([1000], [1.0], __name__="up", job=f"j{i}") for i in range(5)]
            data += [series([1000], [1.0], __name__="load", job="j0")]
            assert (await client.post("/api/v1/write", data=v1_body(data), headers=V1_HEADERS)).status == 204
            bad = v1_body([series([1000], [1.0], __name__="x", a="1", b="2", c="3")])
            assert (await client.post("/api/v1/write", data=bad, headers=V1_HEADERS)).status == 400
            response = await client.get("/")
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            document = await response.text()
            tsdb = await (await client.get("/api/v1/status/tsdb")).json()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", document), (
            "the page loads nothing from elsewhere"
        )
        assert "<script" not in document
        cells = page_cells(document)
        assert cells.text["stored-series"] == "6" == str(tsdb["data"]["headStats"]["numSeries"])
        assert cells.text["active-series"] == "6"
        assert cells.text["tenant"] == "default"
        names = [[name, int(count)] for name, count in cells.rows["top-metric-names"]]
        assert names == [[e["name"], e["value"]] for e in tsdb["data"]["seriesCountByMetricName"]]
        assert names == [["up", 5], ["load", 1]]
        pairs = {name: int(count) for name, count in cells.rows["top-label-pairs"]}
        assert pairs == {e["name"]: e["value"] for e in tsdb["data"]["seriesCountByLabelValuePair"]}
        assert cells.rows["rejections"] == [["too_many_labels", "1"]]
        [error] = cells.rows["recent-errors"]
        assert error[1:5] == ["write", "400", "too_many_labels", "default"]
        assert "--max-labels-per-series" in error[6]
        assert "ingest-chart" in cells.text

    asyncio.run(scenario())


def test_page_of_another_tenant_shows_only_its_series() -> None:
    async def scenario() -> dict[str, Any]:
        async with TestClient(TestServer(create_app(MemoryStorage()))) as client:
            body = v1_body([series([1000], [1.0], __name__="secret")])
            headers = {**V1_HEADERS, "X-Scope-OrgID": "b"}
            assert (await client.post("/api/v1/write", data=body, headers=headers)).status == 204
            default = await (await client.get("/api/v1/status/tsdb")).json()
            other = await (await client.get("/api/v1/status/tsdb", headers={"X-Scope-OrgID": "b"})).json()
            return {"default": default, "b": other}

    found = asyncio.run(scenario())
    assert found["default"]["data"]["headStats"]["numSeries"] == 0
    assert found["b"]["data"]["seriesCountByMetricName"] == [{"name": "secret", "value": 1}]
