"""The workload: which series, which samples, in which request bodies.

A run sends *rounds*; a round covers every series once, in requests of
``series_per_request`` series (the last one may be smaller), each series
with ``samples_per_series`` samples. Request number ``index`` is request
``index % requests_per_round`` of round ``index // requests_per_round``.

Time is simulated as Prometheus scraping every ``interval_ms``: scrape
``n`` of a target is at ``start_ms + n * interval_ms + offset`` with a fixed
offset per target (Prometheus spreads its targets over the interval). A
round carries ``samples_per_series`` consecutive scrapes, so with the
default of one sample per series each round advances time by one
interval; per series, timestamps strictly increase from request to request
and never repeat.

Churn replaces ``churn`` series per minute of *sample time* (per four
rounds at 15 s), in series order, wrapping around: a replaced series gets
a new ``instance`` and ``pod`` (see :mod:`.catalog`), as when a pod is
rescheduled, so the number of active series stays the same.

>>> workload = Workload(WorkloadSpec(series=250, series_per_request=100, start_ms=1_700_000_000_000))
>>> workload.requests_per_round, [workload.batch(i).samples for i in range(3)]
(3, [100, 100, 50])
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from remote_storage.loadgen.catalog import MAX_LABELS, MIN_LABELS, SERIES_PER_TARGET, Catalog, mix64
from remote_storage.loadgen.encoding import (
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    Protocol,
    Template,
    layout,
    timestamp_slot,
)
from remote_storage.loadgen.values import SeriesRef, ValueBlock, ValueMode, value_model
from remote_storage.storage import Labels, MetricMetadata, TimeSeries

__all__ = ["Batch", "Workload", "WorkloadError", "WorkloadSpec"]

MAX_SERIES_PER_REQUEST = 1_000_000


class WorkloadError(ValueError):
    """A workload setting is unusable; the message names the option to change."""


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate; validated when constructed.

    ``churn`` is in series replaced per minute of sample time; ``start_ms``
    is the time of the first scrape (default: now).
    """

    series: int = 100_000
    labels: int = 10
    series_per_request: int = 2_000
    samples_per_series: int = 1
    churn: float = 0.0
    protocol: Protocol = Protocol.V1
    values: ValueMode = ValueMode.REALISTIC
    interval_ms: int = 15_000
    start_ms: int = field(default_factory=_now_ms)
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.series >= 1, f"--series must be at least 1, got {self.series}"),
            (
                MIN_LABELS <= self.labels <= MAX_LABELS,
                f"--labels must be between {MIN_LABELS} (__name__, job, instance) and {MAX_LABELS}, "
                f"got {self.labels}",
            ),
            (
                1 <= self.series_per_request <= MAX_SERIES_PER_REQUEST,
                f"--series-per-request must be between 1 and {MAX_SERIES_PER_REQUEST:,}, "
                f"got {self.series_per_request}",
            ),
            (
                1 <= self.samples_per_series <= 1_000,
                f"--samples-per-series must be between 1 and 1000, got {self.samples_per_series}",
            ),
            (
                math.isfinite(self.churn) and self.churn >= 0,
                f"--churn must be 0 or a positive number of series per minute, got {self.churn}",
            ),
            (self.interval_ms >= 1, f"--interval must be at least 1ms, got {self.interval_ms}ms"),
            (
                MIN_TIMESTAMP_MS <= self.start_ms <= MAX_TIMESTAMP_MS // 2,
                f"start time {self.start_ms} ms is outside the supported years (1971 to 2039)",
            ),
            (self.seed >= 0, f"--seed must be 0 or positive, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise WorkloadError(message)

    @property
    def requests_per_round(self) -> int:
        return -(-self.series // self.series_per_request)


@dataclass(frozen=True, slots=True)
class Batch:
    """One rendered request: its snappy-compressed ``body`` and what it carries."""

    index: int
    template: int
    round: int
    body: bytes
    samples: int
    raw_bytes: int


@dataclass(slots=True)
class _Built:
    signature: tuple[int, int]
    refs: list[SeriesRef]
    offsets: list[int]
    template: Template
    block: ValueBlock


class Workload:
    """Renders the requests of a :class:`WorkloadSpec`.

    :meth:`batch` is cheap (one struct pack of the compressed body per
    request, see :mod:`.encoding`); label sets are encoded and compressed
    once per request template, and again only when churn replaces one of
    its series. Not thread-safe: use one instance per thread.
    """

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.requests_per_round = spec.requests_per_round
        self.catalog = Catalog(spec.labels, spec.seed, targets=-(-spec.series // SERIES_PER_TARGET))
        self._layout = layout(spec.protocol)
        self._values = value_model(spec.values, spec.seed, min(spec.series, spec.series_per_request))
        self._built: dict[int, _Built] = {}

    def replaced(self, round_number: int) -> int:
        """How many series replacements churn has made by the start of ``round_number``."""
        spec = self.spec
        elapsed_ms = round_number * spec.samples_per_series * spec.interval_ms
        return math.floor(elapsed_ms * spec.churn / 60_000 + 1e-9)

    def generation(self, series: int, round_number: int) -> int:
        """How many times series ``series`` has been replaced by ``round_number``."""
        replaced = self.replaced(round_number)
        return replaced // self.spec.series + (series < replaced % self.spec.series)

    def target_offset(self, target: int) -> int:
        """Milliseconds after the start of each interval at which ``target`` is scraped."""
        return mix64(self.spec.seed, target, 0x7157) % self.spec.interval_ms

    def timestamp(self, target: int, scrape: int) -> int:
        """Time of scrape number ``scrape`` of ``target``."""
        spec = self.spec
        return spec.start_ms + scrape * spec.interval_ms + self.target_offset(target)

    def _series_range(self, template: int) -> range:
        first = template * self.spec.series_per_request
        return range(first, min(first + self.spec.series_per_request, self.spec.series))

    def refs(self, index: int) -> list[SeriesRef]:
        """The series of request ``index``, in body order."""
        round_number, template = divmod(index, self.requests_per_round)
        return self._template(template, round_number).refs

    def _template(self, template: int, round_number: int) -> _Built:
        members = self._series_range(template)
        replaced = self.replaced(round_number)
        total = self.spec.series
        renewed = min(max(replaced % total - members.start, 0), len(members))
        signature = (replaced // total, renewed)
        built = self._built.get(template)
        if built is not None and built.signature == signature:
            return built
        catalog = self.catalog
        refs = [
            SeriesRef(index, signature[0] + (index - members.start < renewed), catalog.metric(index))
            for index in members
        ]
        targets: dict[int, int] = {}
        groups = [targets.setdefault(ref.index // SERIES_PER_TARGET, len(targets)) for ref in refs]
        labels = [catalog.labels(ref.index, ref.generation) for ref in refs]
        built = _Built(
            signature,
            refs,
            [self.target_offset(target) for target in targets],
            self._layout.template(labels, [ref.metric for ref in refs], groups, self.spec.samples_per_series),
            self._values.block(template, refs),
        )
        self._built[template] = built
        return built

    def batch(self, index: int) -> Batch:
        """Request number ``index``, rendered and compressed."""
        spec = self.spec
        round_number, template = divmod(index, self.requests_per_round)
        built = self._template(template, round_number)
        first_scrape = round_number * spec.samples_per_series
        values = []
        stamps = []
        for scrape in range(first_scrape, first_scrape + spec.samples_per_series):
            values.append(built.block.values(scrape))
            base = spec.start_ms + scrape * spec.interval_ms
            stamps.append([timestamp_slot(base + offset) for offset in built.offsets])
        return Batch(
            index=index,
            template=template,
            round=round_number,
            body=built.template.render(values, stamps),
            samples=built.template.series * spec.samples_per_series,
            raw_bytes=built.template.raw_size,
        )

    def expected(self, index: int) -> list[TimeSeries]:
        """The series request ``index`` carries, computed one sample at a time (the reference)."""
        spec = self.spec
        round_number, template = divmod(index, self.requests_per_round)
        members = self._series_range(template)
        scrapes = range(round_number * spec.samples_per_series, (round_number + 1) * spec.samples_per_series)
        result = []
        for position, series in enumerate(members):
            generation = self.generation(series, round_number)
            ref = SeriesRef(series, generation, self.catalog.metric(series))
            target = series // SERIES_PER_TARGET
            result.append(
                TimeSeries(
                    Labels(self.catalog.labels(series, generation)),
                    [self.timestamp(target, scrape) for scrape in scrapes],
                    [self._values.value(template, position, ref, scrape) for scrape in scrapes],
                )
            )
        return result

    def metadata(self, index: int) -> list[MetricMetadata]:
        """The metric families of request ``index`` (sent with each series in v2)."""
        families = {ref.metric.name: ref.metric for ref in self.refs(index)}
        return [MetricMetadata(m.name, m.type, m.help) for m in families.values()]

    def describe(self) -> str:
        spec = self.spec
        return (
            f"{spec.series:,} series x {spec.labels} labels, {spec.series_per_request:,} series/request, "
            f"{spec.samples_per_series} sample(s)/series, {spec.values.value} values, "
            f"churn {spec.churn:g}/min, remote write {spec.protocol.value}"
        )
