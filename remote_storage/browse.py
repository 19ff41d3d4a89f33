"""Prometheus' label and series APIs over the stored data, so label browsers work against the service.

Routes (GET, or POST with a form body, as in Prometheus)::

    /api/v1/labels                 label names
    /api/v1/label/<name>/values    values of one label
    /api/v1/series                 label sets of the series matching match[]

Each takes ``match[]`` (repeatable series selectors; optional except for
``/series``), ``start`` and ``end`` (Unix seconds or RFC 3339; the whole
stored range when left out) and ``limit`` (0: no limit; a cut answer carries
a warning, as Prometheus' does), and answers in Prometheus' JSON shapes:
``{"status": "success", "data": [...]}``, or ``{"status": "error",
"errorType": "bad_data", "error": ...}`` with 400. Everything is per tenant.

A backend that can list series from an index implements
:class:`SeriesIndex`; for any other the series come from ``process_query``
over the range, which reads their samples too.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from aiohttp import web
from multidict import MultiDict, MultiMapping

from remote_storage.matchers import Matcher
from remote_storage.selectors import InvalidSelector, parse_selector
from remote_storage.storage import Context, Labels, Query, RemoteStorage

__all__ = ["BrowseError", "SeriesIndex", "find_series", "parse_parameters"]

MIN_TIME_MS = -(2**63) // 1000
MAX_TIME_MS = (2**63 - 1) // 1000
#: Every series: the selector used when no match[] is given.
EVERY_SERIES = (Matcher.parse("__name__", "=~", ".+"),)


@runtime_checkable
class SeriesIndex(Protocol):
    """A backend that can list the label sets of matching series without reading their samples."""

    def series_labels(
        self, ctx: Context, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> AsyncIterator[Labels]:
        """Label sets of the series matching every matcher with data in ``[start_ms, end_ms]``."""
        ...


class BrowseError(ValueError):
    """A parameter Prometheus would refuse with ``bad_data``."""


class Parameters:
    """The parsed parameters of one request."""

    def __init__(self, selectors: list[tuple[Matcher, ...]], start_ms: int, end_ms: int, limit: int) -> None:
        self.selectors = selectors
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.limit = limit


def _timestamp(name: str, text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    bad = BrowseError(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise bad from None
        if parsed.tzinfo is None:
            raise bad from None
        seconds = parsed.timestamp()
    if math.isnan(seconds) or math.isinf(seconds):
        raise bad
    return max(MIN_TIME_MS, min(MAX_TIME_MS, round(seconds * 1000)))


def parse_parameters(values: MultiMapping[str], need_match: bool = False) -> Parameters:
    """``match[]``, ``start``, ``end`` and ``limit`` of a request (query string and form merged)."""
    start = _timestamp("start", values.get("start"), MIN_TIME_MS)
    end = _timestamp("end", values.get("end"), MAX_TIME_MS)
    if end < start:
        raise BrowseError("end timestamp must not be before start time")
    limit_text = values.get("limit", "") or "0"
    try:
        limit = int(limit_text)
    except ValueError:
        raise BrowseError(
            f'invalid parameter "limit": cannot parse "{limit_text}" to a valid limit'
        ) from None
    if limit < 0:
        raise BrowseError('invalid parameter "limit": limit must be non-negative')
    selectors = []
    for text in values.getall("match[]", []):
        try:
            selectors.append(parse_selector(text))
        except InvalidSelector as exc:
            raise BrowseError(str(exc)) from None
    if need_match and not selectors:
        raise BrowseError("no match[] parameter provided")
    return Parameters(selectors, start, end, limit)


async def find_series(storage: RemoteStorage, ctx: Context, params: Parameters) -> set[Labels]:
    """Label sets of the stored series that any selector matches (every series without one)."""
    found: set[Labels] = set()
    for matchers in params.selectors or [EVERY_SERIES]:
        if isinstance(storage, SeriesIndex):
            async for labels in storage.series_labels(ctx, matchers, params.start_ms, params.end_ms):
                found.add(labels)
        else:
            query = Query(params.start_ms, params.end_ms, matchers, accept_chunks=True)
            async for series in storage.process_query(ctx, query):
                found.add(series.labels)
    return found


def _answer(items: Sequence[object], limit: int) -> web.Response:
    body: dict[str, object] = {"status": "success", "data": items}
    if limit and len(items) > limit:
        body["data"] = list(items[:limit])
        body["warnings"] = ["results truncated due to limit"]
    return web.json_response(body)


def error(message: str, status: int = 400, error_type: str = "bad_data") -> web.Response:
    """Prometheus' error shape."""
    return web.json_response({"status": "error", "errorType": error_type, "error": message}, status=status)


async def _values(request: web.Request) -> MultiMapping[str]:
    if request.method != "POST":
        return request.query
    merged: MultiDict[str] = MultiDict(request.query)
    for key, value in (await request.post()).items():
        if isinstance(value, str):
            merged.add(key, value)
    return merged


Lister = Callable[[Iterable[Labels]], Sequence[object]]


def handler(
    storage: Callable[[web.Request], RemoteStorage],
    context: Callable[[web.Request], Context],
    lister: Callable[[web.Request], Lister],
    need_match: bool = False,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A route handler: parse the parameters, find the series, answer with ``lister``'s list."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            params = parse_parameters(await _values(request), need_match)
        except BrowseError as exc:
            return error(str(exc))
        found = await find_series(storage(request), context(request), params)
        return _answer(lister(request)(found), params.limit)

    return handle


def label_names(request: web.Request) -> Lister:
    def names(found: Iterable[Labels]) -> Sequence[object]:
        return sorted({name for labels in found for name, _ in labels})

    return names


def label_values(request: web.Request) -> Lister:
    name = request.match_info["name"]
    if name.startswith("U__"):  # Prometheus 3's escaping of UTF-8 names in this path
        name = _unescape_name(name[3:])

    def values(found: Iterable[Labels]) -> Sequence[object]:
        return sorted({value for labels in found if (value := labels.get(name))})

    return values


def series(request: web.Request) -> Lister:
    def label_sets(found: Iterable[Labels]) -> Sequence[object]:
        return [labels.as_dict() for labels in sorted(found)]

    return label_sets


def _unescape_name(text: str) -> str:
    """``U__`` names: ``_`` stands for itself doubled, ``_XX_`` for code point XX (hex)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "_":
            out.append(char)
            i += 1
        elif text.startswith("__", i):
            out.append("_")
            i += 2
        else:
            end = text.find("_", i + 1)
            if end < 0:
                return text
            try:
                out.append(chr(int(text[i + 1 : end], 16)))
            except ValueError:
                return text
            i = end + 1
    return "".join(out)
