"""Process metrics (``process_*``) read from ``/proc``, as every Prometheus client exposes them.

========================================  =======  =====================================================
``process_cpu_seconds_total``             counter  user and system CPU time
``process_resident_memory_bytes``         gauge    resident set size
``process_virtual_memory_bytes``          gauge    virtual memory size
``process_start_time_seconds``            gauge    start time, Unix seconds
``process_open_fds``                      gauge    open file descriptors
``process_max_fds``                       gauge    soft limit on open file descriptors
========================================  =======  =====================================================

The default registry holds one :class:`ProcessCollector` for the running
process (:data:`PROCESS_COLLECTOR`); add one to your own registry with
``ProcessCollector(registry=registry)``. On a system without ``/proc`` the
collector reports nothing.

    >>> from remote_storage.instrument import ProcessCollector, Registry
    >>> registry = Registry()
    >>> _ = ProcessCollector(registry=registry)
    >>> registry.get_sample_value("process_open_fds") > 0
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from remote_storage.instrument.registry import REGISTRY, Registry
from remote_storage.instrument.samples import NO_LABELS, FamilyType, MetricFamily, Sample

__all__ = ["PROCESS_COLLECTOR", "ProcessCollector"]

# name, type, unit, help; the order of collection.
_FAMILIES: tuple[tuple[str, FamilyType, str, str], ...] = (
    ("cpu_seconds", "counter", "seconds", "Total user and system CPU time spent in seconds."),
    ("virtual_memory_bytes", "gauge", "bytes", "Virtual memory size in bytes."),
    ("resident_memory_bytes", "gauge", "bytes", "Resident memory size in bytes."),
    ("start_time_seconds", "gauge", "seconds", "Start time of the process since unix epoch in seconds."),
    ("open_fds", "gauge", "", "Number of open file descriptors."),
    ("max_fds", "gauge", "", "Maximum number of open file descriptors."),
)


class ProcessCollector:
    """Collects the ``process_*`` metrics of one process from ``proc`` (default ``/proc``).

    ``pid`` returns the process to report (default: this one, read through
    ``/proc/self``); ``namespace`` prefixes the names (``<namespace>_process_...``).
    """

    def __init__(
        self,
        namespace: str = "",
        pid: Callable[[], int | str] = lambda: "self",
        proc: str | Path = "/proc",
        registry: Registry | None = REGISTRY,
    ) -> None:
        self._prefix = f"{namespace}_process_" if namespace else "process_"
        self._pid = pid
        self._proc = Path(proc)
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._boot_time: float | None = None
        if registry is not None:
            registry.register(self)

    def describe(self) -> list[MetricFamily]:
        return [MetricFamily(self._prefix + name, kind, text, unit) for name, kind, unit, text in _FAMILIES]

    def collect(self) -> list[MetricFamily]:
        try:
            values = self._read()
        except OSError:  # no /proc here, or the process is gone
            return []
        families = []
        for (name, kind, unit, text), value in zip(_FAMILIES, values, strict=True):
            full = self._prefix + name
            sample = full + "_total" if kind == "counter" else full
            families.append(MetricFamily(full, kind, text, unit, [Sample(sample, NO_LABELS, value)]))
        return families

    def _read(self) -> tuple[float, ...]:
        base = self._proc / str(self._pid())
        # The command name (field 2) is in parentheses and may hold spaces and ')'.
        fields = (base / "stat").read_text().rpartition(")")[2].split()
        # fields[0] is field 3 of proc(5): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
        cpu = (int(fields[11]) + int(fields[12])) / self._ticks
        start = int(fields[19]) / self._ticks + self._boot_seconds()
        virtual = float(fields[20])
        resident = float(int(fields[21]) * self._page_size)
        open_fds = float(len(os.listdir(base / "fd")))
        return cpu, virtual, resident, start, open_fds, self._max_fds(base)

    def _boot_seconds(self) -> float:
        if self._boot_time is None:
            for line in (self._proc / "stat").read_text().splitlines():
                if line.startswith("btime "):
                    self._boot_time = float(line.split()[1])
                    break
            else:
                raise OSError(f"no btime line in {self._proc / 'stat'}")
        return self._boot_time

    @staticmethod
    def _max_fds(base: Path) -> float:
        for line in (base / "limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return float("inf") if soft == "unlimited" else float(soft)
        raise OSError(f"no 'Max open files' line in {base / 'limits'}")


PROCESS_COLLECTOR = ProcessCollector()
"""The collector of this process's metrics in the default registry."""
