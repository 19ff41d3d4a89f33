"""The load generator: realistic remote-write traffic for load-testing ingestion.

``remote-storage loadgen URL`` (see :mod:`.cli`) in code::

    import asyncio
    from remote_storage.loadgen import SendOptions, Workload, WorkloadSpec, run_load

    workload = Workload(WorkloadSpec(series=10_000))
    summary = asyncio.run(run_load(workload, SendOptions("http://127.0.0.1:9201/api/v1/write", requests=100)))
    print(summary.format())

Modules, from the data to the wire: :mod:`.catalog` (who the series are),
:mod:`.values` (their samples), :mod:`.encoding` (request templates),
:mod:`.workload` (requests over time, churn), :mod:`.bodies` (rendering
ahead), :mod:`.sender` (HTTP, concurrency, rate), :mod:`.report`
(latency and summary), :mod:`.runner` (one run), :mod:`.null_server`
(the yardstick endpoint).
"""

from remote_storage.loadgen.encoding import Protocol
from remote_storage.loadgen.report import LatencyStats, Summary, Tally
from remote_storage.loadgen.runner import run_load
from remote_storage.loadgen.sender import SendOptions
from remote_storage.loadgen.values import ValueMode
from remote_storage.loadgen.workload import Batch, Workload, WorkloadError, WorkloadSpec

__all__ = [
    "Batch",
    "LatencyStats",
    "Protocol",
    "SendOptions",
    "Summary",
    "Tally",
    "ValueMode",
    "Workload",
    "WorkloadError",
    "WorkloadSpec",
    "run_load",
]
