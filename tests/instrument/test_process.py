"""The process collector: names and values from /proc, a fake one and the real one."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

from remote_storage.instrument import PROCESS_COLLECTOR, REGISTRY, ProcessCollector, Registry

NAMES = [
    "process_cpu_seconds",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
]


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n")
    process = tmp_path / "42"
    (process / "fd").mkdir(parents=True)
    for fd in range(5):
        (process / "fd" / str(fd)).touch()
    # The command name may hold spaces and parentheses.
    fields = ["S"] + ["0"] * 40
    fields[11], fields[12] = "250", "150"  # utime, stime in ticks
    fields[19] = "1000"  # starttime in ticks after boot
    fields[20] = "123456789"  # vsize in bytes
    fields[21] = "1000"  # rss in pages
    (process / "stat").write_text("42 (odd (name) x) " + " ".join(fields) + "\n")
    (process / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1024                 4096                 files\n"
    )
    return tmp_path


def test_values_come_from_proc(fake_proc: Path) -> None:
    registry = Registry()
    ProcessCollector(pid=lambda: 42, proc=fake_proc, registry=registry)
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    assert registry.get_sample_value("process_cpu_seconds_total") == 400 / ticks
    assert registry.get_sample_value("process_start_time_seconds") == 1_700_000_000 + 1000 / ticks
    assert registry.get_sample_value("process_virtual_memory_bytes") == 123456789
    assert registry.get_sample_value("process_resident_memory_bytes") == 1000 * page
    assert registry.get_sample_value("process_open_fds") == 5
    assert registry.get_sample_value("process_max_fds") == 1024
    families = {family.name: family for family in registry.collect()}
    assert list(families) == NAMES
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_cpu_seconds"].unit == "seconds"
    assert families["process_resident_memory_bytes"].unit == "bytes"


def test_namespace_prefixes_the_names(fake_proc: Path) -> None:
    registry = Registry()
    ProcessCollector(namespace="rs", pid=lambda: 42, proc=fake_proc, registry=registry)
    assert registry.get_sample_value("rs_process_open_fds") == 5


def test_without_proc_nothing_is_reported_but_names_are_reserved(tmp_path: Path) -> None:
    registry = Registry()
    collector = ProcessCollector(proc=tmp_path / "missing", registry=registry)
    assert list(registry.collect()) == []
    assert [family.name for family in collector.describe()] == NAMES


def test_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    ProcessCollector(registry=registry)
    open_fds = len(os.listdir("/proc/self/fd"))
    assert abs((registry.get_sample_value("process_open_fds") or 0) - open_fds) <= 2
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert registry.get_sample_value("process_max_fds") == (
        soft if soft != resource.RLIM_INFINITY else float("inf")
    )
    started = registry.get_sample_value("process_start_time_seconds") or 0
    assert time.time() - 24 * 3600 < started <= time.time()
    assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 1_000_000
    assert (registry.get_sample_value("process_virtual_memory_bytes") or 0) > 1_000_000
    user, system = os.times()[:2]
    assert registry.get_sample_value("process_cpu_seconds_total") == pytest.approx(user + system, abs=0.5)


def test_the_default_registry_has_process_metrics() -> None:
    assert PROCESS_COLLECTOR in [collector for collector, _ in REGISTRY._collectors.values()]
    assert (REGISTRY.get_sample_value("process_open_fds") or 0) > 0
