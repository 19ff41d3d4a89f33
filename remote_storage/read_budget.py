"""Read answers built under sample limits: counting stops the building as soon as a limit is passed.

A limit checked only once an answer is complete bounds nothing: the answer
is already in memory. Here every series is counted as it arrives from the
backend, and the first one past a limit raises, which stops every query of
the request (:func:`collect_results`); the streamed path counts frames the
same way with a :class:`SampleBudget` of its own.
"""

from __future__ import annotations

import asyncio

from remote_storage.config import Settings
from remote_storage.errors import RequestSampleLimitExceeded, SampleLimitExceeded
from remote_storage.storage import Context, Query, QueryResult, ReadRequest, RemoteStorage

__all__ = ["SampleBudget", "collect_results"]


class SampleBudget:
    """Samples counted while a read's answer is built: per query (``--read-sample-limit``) and,
    for SAMPLES answers, over the whole request (``--read-request-sample-limit``).

    >>> budget = SampleBudget(Settings(read_sample_limit=100, read_request_sample_limit=150))
    >>> budget.add(0, 100); budget.add(1, 40)
    >>> budget.add(1, 20)
    Traceback (most recent call last):
    ...
    remote_storage.errors.RequestSampleLimitExceeded: the queries of this request together exceeded ...
    """

    __slots__ = ("per_query", "per_request", "queries", "total")

    def __init__(self, settings: Settings, whole_request: bool = True) -> None:
        self.per_query = settings.read_sample_limit
        self.per_request = settings.read_request_sample_limit if whole_request else 0
        self.queries: dict[int, int] = {}
        self.total = 0

    def add(self, index: int, samples: int) -> None:
        """Count ``samples`` more for query ``index``; raise as soon as a limit is passed."""
        count = self.queries.get(index, 0) + samples
        self.queries[index] = count
        self.total += samples
        if self.per_query and count > self.per_query:
            raise SampleLimitExceeded(index, self.per_query)
        if self.per_request and self.total > self.per_request:
            raise RequestSampleLimitExceeded(self.per_request)


async def collect_results(
    storage: RemoteStorage, ctx: Context, read_request: ReadRequest, budget: SampleBudget
) -> list[QueryResult]:
    """Every query's series, run concurrently, stopping all of them as soon as a limit is passed.

    A backend that overrides :meth:`RemoteStorage.read` is asked through it
    and its answer counted afterwards (it may not build answers series by series).
    """
    if type(storage).read is not RemoteStorage.read:
        results = await storage.read(ctx, read_request)
        for index, result in enumerate(results):
            budget.add(index, sum(len(s.timestamps) + len(s.histograms) for s in result.series))
        return results

    async def collect(index: int, query: Query) -> QueryResult:
        result = QueryResult()
        found = storage.process_query(ctx, query)
        try:
            async for series in found:
                budget.add(index, len(series.timestamps) + len(series.histograms))
                result.series.append(series)
        finally:
            close = getattr(found, "aclose", None)  # stop the backend's generator now, not at collection
            if close is not None:
                await close()
        return result

    tasks = [asyncio.ensure_future(collect(i, q)) for i, q in enumerate(read_request.queries)]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:  # the others stop when one failed
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
