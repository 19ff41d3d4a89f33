"""The status page at ``/`` and Prometheus' ``/api/v1/status/tsdb``.

The page is rendered on the server as one HTML document with its style and
its chart (inline SVG) inside, no scripts and no external assets, so it
works offline and in any browser; it reloads itself every 15 s. It shows
uptime, the backend and what it holds, the ingestion rate of the last 15
minutes, rejections by reason, active series, the cardinality of the
stored data (top metric names, label names and label pairs by series count,
as Prometheus' TSDB status page) and the most recent errors.

Cardinality comes from listing the tenant's series (see
:mod:`remote_storage.browse`); the result is kept for ``CARDINALITY_TTL``
seconds so a page left open, or several, cost one listing per interval.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remote_storage.browse import EVERY_SERIES, SeriesIndex
from remote_storage.recent import IngestHistory, RecentError
from remote_storage.storage import Context, Labels, Query, RemoteStorage, StorageStats

__all__ = ["Cardinality", "StatusPage", "cardinality", "render_page"]

#: Entries of each top list, as Prometheus shows.
TOP = 10
#: Seconds a tenant's cardinality is reused before it is listed again.
CARDINALITY_TTL = 30.0


@dataclass(frozen=True)
class Cardinality:
    """Series counts of one tenant's stored data, in the terms of Prometheus' TSDB status."""

    series: int
    by_metric_name: list[tuple[str, int]]
    values_by_label_name: list[tuple[str, int]]
    bytes_by_label_name: list[tuple[str, int]]
    by_label_pair: list[tuple[str, int]]

    def as_prometheus(self) -> dict[str, Any]:
        """The ``data`` of Prometheus' ``/api/v1/status/tsdb``."""

        def entries(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
            return [{"name": name, "value": value} for name, value in items]

        return {
            "headStats": {"numSeries": self.series, "numLabelPairs": len(self.by_label_pair)},
            "seriesCountByMetricName": entries(self.by_metric_name),
            "labelValueCountByLabelName": entries(self.values_by_label_name),
            "memoryInBytesByLabelName": entries(self.bytes_by_label_name),
            "seriesCountByLabelValuePair": entries(self.by_label_pair),
        }


def _top(counter: Mapping[str, int], limit: int) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit]


def count_series(series: Iterable[Labels], limit: int = TOP) -> Cardinality:
    """The top lists of a collection of label sets."""
    names: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    total = 0
    for labels in series:
        total += 1
        for name, value in labels:
            pairs[f"{name}={value}"] += 1
            values.setdefault(name, set()).add(value)
            if name == "__name__":
                names[value] += 1
    value_counts = {name: len(found) for name, found in values.items()}
    value_bytes = {name: sum(len(v.encode()) for v in found) for name, found in values.items()}
    return Cardinality(
        total, _top(names, limit), _top(value_counts, limit), _top(value_bytes, limit), _top(pairs, limit)
    )


async def cardinality(storage: RemoteStorage, ctx: Context) -> Cardinality:
    """Count the stored series of ``ctx.tenant``."""
    found: set[Labels] = set()
    if isinstance(storage, SeriesIndex):
        async for labels in storage.series_labels(ctx, EVERY_SERIES, -(2**62), 2**62):
            found.add(labels)
    else:
        async for series in storage.process_query(
            ctx, Query(-(2**62), 2**62, EVERY_SERIES, accept_chunks=True)
        ):
            found.add(series.labels)
    return count_series(found)


class StatusPage:
    """Cardinality per tenant, reused for :data:`CARDINALITY_TTL` seconds."""

    def __init__(self, storage: RemoteStorage, clock: Any = time.monotonic) -> None:
        self.storage = storage
        self._clock = clock
        self._cache: dict[str, tuple[float, Cardinality]] = {}

    async def cardinality(self, ctx: Context) -> Cardinality:
        now = self._clock()
        cached = self._cache.get(ctx.tenant)
        if cached is not None and now - cached[0] < CARDINALITY_TTL:
            return cached[1]
        found = await cardinality(self.storage, ctx)
        self._cache[ctx.tenant] = (now, found)
        return found


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s"


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _size(value: int | None) -> str:
    if value is None:
        return "unknown"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _chart(points: list[tuple[float, float]], width: int = 720, height: int = 160) -> str:
    """An SVG line of samples per second over time, with its scale."""
    peak = max((rate for _, rate in points), default=0.0)
    top = peak * 1.1 or 1.0
    step = width / max(1, len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - rate / top * height:.1f}" for i, (_, rate) in enumerate(points)
    )
    return (
        f'<svg id="ingest-chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="samples per second over the last 15 minutes, peak {peak:,.0f}/s">'
        f'<rect width="{width}" height="{height}" class="plot"/>'
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{coords}"/>'
        f'<text x="4" y="14" class="axis">{peak:,.0f}/s</text>'
        f'<text x="4" y="{height - 4}" class="axis">15 min ago</text>'
        f'<text x="{width - 4}" y="{height - 4}" class="axis" text-anchor="end">now</text>'
        "</svg>"
    )


def _table(rows: list[tuple[str, int]], heading: str, table_id: str, counted: str = "series") -> str:
    body = "".join(
        f'<tr><td class="name">{html.escape(name)}</td><td class="num">{value}</td></tr>'
        for name, value in rows
    )
    if not rows:
        body = '<tr><td colspan="2" class="empty">none</td></tr>'
    return (
        f'<table id="{table_id}"><thead><tr><th>{html.escape(heading)}</th><th>{counted}</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.sub{color:#59636e;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d1d9e0;border-radius:6px;padding:10px 14px;min-width:150px}
.card .label{color:#59636e;font-size:12px}.card .value{font-size:20px;font-weight:600}
table{border-collapse:collapse;margin:0 24px 16px 0;min-width:280px}
th,td{border-bottom:1px solid #d1d9e0;padding:4px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.empty{color:#59636e}
.tables{display:flex;flex-wrap:wrap;align-items:flex-start}
.plot{fill:#f6f8fa;stroke:#d1d9e0}.axis{font-size:11px;fill:#59636e}
td.name{max-width:420px;overflow-wrap:anywhere}
"""


def render_page(
    *,
    version: str,
    backend: str,
    tenant: str,
    uptime: float,
    stats: StorageStats,
    history: IngestHistory,
    rejections: Mapping[str, float],
    active_series: int,
    found: Cardinality,
    errors: list[RecentError],
) -> str:
    """The whole status page as one HTML document."""
    rate = history.rate(60.0)
    cards = [
        ("uptime", "uptime", _duration(uptime)),
        ("ingest-rate", "samples/s (last minute)", f"{rate:,.0f}"),
        ("active-series", f"active series ({tenant})", f"{active_series:,}"),
        ("stored-series", f"stored series ({tenant})", f"{found.series:,}"),
        (
            "backend-series",
            "series in the backend (all tenants)",
            "unknown" if stats.series is None else f"{stats.series:,}",
        ),
        ("backend-bytes", "sample bytes held", _size(stats.sample_bytes)),
    ]
    card_html = "".join(
        f'<div class="card"><div class="label">{html.escape(label)}</div>'
        f'<div class="value" id="{card_id}">{html.escape(value)}</div></div>'
        for card_id, label, value in cards
    )
    rejection_rows = sorted(
        ((reason, int(count)) for reason, count in rejections.items()), key=lambda r: -r[1]
    )
    error_rows = (
        "".join(
            "<tr>"
            f"<td>{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(e.time))}</td>"
            f"<td>{html.escape(e.handler)}</td><td class='num'>{e.status}</td>"
            f"<td>{html.escape(e.reason)}</td>"
            f"<td>{html.escape(e.tenant)}</td><td>{html.escape(e.remote)}</td>"
            f"<td class='name'>{html.escape(e.message)}</td></tr>"
            for e in errors
        )
        or '<tr><td colspan="7" class="empty">none</td></tr>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>remote-storage status</title><style>{_STYLE}</style></head>
<body>
<h1>prometheus-remote-storage {html.escape(version)}</h1>
<div class="sub">backend <span id="backend">{html.escape(backend)}</span> · tenant
<span id="tenant">{html.escape(tenant)}</span> · JSON at <a href="api/v1/status/tsdb">/api/v1/status/tsdb</a>
and <a href="metrics">/metrics</a></div>
<div class="cards">{card_html}</div>
<h2>Ingestion, last 15 minutes</h2>
{_chart(history.points())}
<h2>Rejected writes by reason (since start)</h2>
{_table(rejection_rows, "reason", "rejections", "requests")}
<h2>Cardinality ({html.escape(tenant)})</h2>
<div class="tables">
{_table(found.by_metric_name, "metric name", "top-metric-names")}
{_table(found.values_by_label_name, "label name", "top-label-names", "values")}
{_table(found.by_label_pair, "label pair", "top-label-pairs")}
</div>
<h2>Recent errors</h2>
<table id="recent-errors"><thead><tr><th>time (UTC)</th><th>handler</th><th>status</th><th>reason</th>
<th>tenant</th><th>remote</th><th>message</th></tr></thead><tbody>{error_rows}</tbody></table>
</body></html>
"""
