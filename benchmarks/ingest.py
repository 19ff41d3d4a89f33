"""Ingestion benchmark: this service's backends and real peers under one loadgen workload.

Run from the repository root::

    python benchmarks/ingest.py                       # the full workload, every target
    python benchmarks/ingest.py --requests 500 --targets prometheus,sqlite

Every target is started on a free loopback port with a fresh data directory,
driven by ``remote-storage loadgen`` (the same workload for all: by default
100,000 series of 10 labels, 2,000 series per request, 4,000 requests,
concurrency 8), then stopped. Targets alternate A B A B over ``--rounds`` so
that drift of the machine hits all of them alike; the best round of each is
reported. Printed per target: acknowledged samples/s, server CPU seconds per
million samples (all processes of the server), peak RSS, and bytes per sample
stored (SQL: the database after compacting everything into chunks;
Prometheus: its TSDB after a snapshot; memory: the sample data it reports on
``/metrics``; SQL also: bytes of its series index per series, ``index
B/series``), bytes per sample of sealed XOR chunk data (Prometheus: the
chunks of its snapshot's blocks; memory: its sealed chunks; SQL: its chunk
rows), each also as a ratio to Prometheus' own remote-write receiver measured
in the same run. Sealed figures need more than 120 samples per series, for
example ``--series 20000 --requests 2400`` (240 samples per series).

Targets: ``prometheus`` (Debian package ``prometheus``, with
``--web.enable-remote-write-receiver``), ``victoria-metrics`` (Debian package
``victoria-metrics``), ``memory``, ``sqlite``,
``postgresql`` (a private PostgreSQL server, Debian package ``postgresql``),
and ``null``: a receiver that only reads the bodies, which shows the rate
the load generator itself offers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, wait_http_ok  # noqa: E402
from tests.support.system import ensure_debian_package  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Result:
    target: str
    samples: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss: int = 0
    disk_bytes: int | None = None
    sealed_bytes: int | None = None  # XOR chunk data only, no records around it
    sealed_samples: int | None = None
    errors: int = 0
    failures: dict[str, object] = field(default_factory=dict)  # the loadgen's count per status or error
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_seconds / (self.samples / 1e6) if self.samples else float("nan")

    @property
    def bytes_per_sample(self) -> float | None:
        return self.disk_bytes / self.samples if self.disk_bytes is not None and self.samples else None

    @property
    def sealed_per_sample(self) -> float | None:
        if self.sealed_bytes is None or not self.sealed_samples:
            return None
        return self.sealed_bytes / self.sealed_samples


def group_usage(leader: int) -> tuple[float, int]:
    """CPU seconds (user + system) and RSS bytes of every process in the process group."""
    cpu = 0.0
    rss = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) != leader:  # pgrp (field 5 of stat; index 2 after the command)
            continue
        cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss += int(fields[21]) * PAGE_SIZE
    return cpu, rss


class Sampler(threading.Thread):
    """Polls a process group's RSS until stopped and keeps the peak."""

    def __init__(self, leader: int) -> None:
        super().__init__(daemon=True)
        self.leader = leader
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.25):
            self.peak = max(self.peak, group_usage(self.leader)[1])


@contextmanager
def server(argv: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Start a server in its own process group, wait for readiness, stop it after."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        wait_http_ok(ready_url, 60)
        yield process.pid
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def run_loadgen(url: str, args: argparse.Namespace) -> dict[str, object]:
    argv = [
        sys.executable, "-m", "remote_storage.loadgen", url, "--json", "--quiet",
        "--series", str(args.series), "--series-per-request", str(args.series_per_request),
        "--requests", str(args.requests), "--concurrency", str(args.concurrency),
        "--values", args.values,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if not done.stdout.strip():
        raise RuntimeError(f"loadgen printed nothing: {done.stderr[-2000:]}")
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def measure(target: str, pid: int, url: str, args: argparse.Namespace) -> Result:
    cpu_before, _ = group_usage(pid)
    sampler = Sampler(pid)
    sampler.start()
    summary = run_loadgen(url, args)
    sampler.done.set()
    sampler.join()
    cpu_after, _ = group_usage(pid)
    result = Result(target)
    result.samples = int(summary["samples_accepted"])  # type: ignore[call-overload]
    result.seconds = float(summary["duration_seconds"])  # type: ignore[arg-type]
    result.cpu_seconds = cpu_after - cpu_before
    result.peak_rss = sampler.peak
    result.errors = int(summary["requests_failed"])  # type: ignore[call-overload]
    for kind in ("non_2xx", "transport_errors"):
        result.failures.update(summary.get(kind) or {})  # type: ignore[call-overload]
    return result


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_prometheus(work: Path, args: argparse.Namespace) -> Result:
    port = free_port()
    argv = prometheus_argv(work, port, "--web.enable-admin-api")
    base = f"http://127.0.0.1:{port}"
    with server(argv, f"{base}/-/ready", work / "prometheus.log") as pid:
        result = measure("prometheus", pid, f"{base}/api/v1/write", args)
        request = urllib.request.Request(f"{base}/api/v1/admin/tsdb/snapshot", method="POST")
        with urllib.request.urlopen(request, timeout=300) as response:
            name = json.load(response)["data"]["name"]
        snapshot = work / "tsdb" / "snapshots" / name
        result.disk_bytes = directory_size(snapshot)
        result.sealed_bytes, result.sealed_samples, file_bytes = block_chunks(snapshot)
        result.notes.append(f"chunk files {file_bytes / max(result.sealed_samples, 1):.2f} B/sample")
    return result


def block_chunks(snapshot: Path) -> tuple[int, int, int]:
    """(XOR chunk data bytes, samples, chunk file bytes) of the blocks in a TSDB snapshot.

    A block's ``chunks/`` segment files hold an 8-byte header, then per chunk
    its data length (uvarint), encoding (1 byte), data and CRC32 (4 bytes);
    only the data counts, as for the service's backends.
    """
    from remote_storage.varint import decode_uvarint

    data_bytes = samples = file_bytes = 0
    for meta in snapshot.glob("*/meta.json"):
        samples += int(json.loads(meta.read_text())["stats"]["numSamples"])
        for segment in sorted((meta.parent / "chunks").iterdir()):
            buf = segment.read_bytes()
            file_bytes += len(buf)
            pos = 8
            while pos < len(buf):
                length, pos = decode_uvarint(buf, pos)
                data_bytes += length
                pos += 1 + length + 4
    return data_bytes, samples, file_bytes


def bench_victoria(work: Path, args: argparse.Namespace) -> Result:
    binary = ensure_debian_package("victoria-metrics", "victoria-metrics")
    port = free_port()
    argv = [
        binary,
        f"-storageDataPath={work / 'vm'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
    ]
    base = f"http://127.0.0.1:{port}"
    with server(argv, f"{base}/health", work / "vm.log") as pid:
        result = measure("victoria-metrics", pid, f"{base}/api/v1/write", args)
    result.disk_bytes = directory_size(work / "vm")
    return result


def bench_null(work: Path, args: argparse.Namespace) -> Result:
    """The load generator against a receiver that only reads bodies: what it can offer."""
    port = free_port()
    argv = [sys.executable, "-m", "remote_storage.loadgen.null_server", "--listen", f"127.0.0.1:{port}"]
    base = f"http://127.0.0.1:{port}"
    with server(argv, f"{base}/-/ready", work / "null.log") as pid:
        return measure("null", pid, f"{base}/api/v1/write", args)


def service_argv(port: int, url: str, *extra: str) -> list[str]:
    """``remote-storage serve`` on a loopback port, as this interpreter runs it."""
    return [
        sys.executable,
        "-m",
        "remote_storage",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--storage",
        url,
        *extra,
    ]


def prometheus_argv(work: Path, port: int, *extra: str) -> list[str]:
    """A Prometheus with only its remote-write receiver fed, data in ``work``."""
    binary = ensure_debian_package("prometheus", "prometheus")
    (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    return [
        binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", "--web.enable-remote-write-receiver",
        "--storage.tsdb.retention.time=100y", *extra,
    ]  # fmt: skip


def bench_service(target: str, url: str, work: Path, args: argparse.Namespace) -> Result:
    port = free_port()
    argv = service_argv(port, url)
    if args.workers is not None and target != "memory":
        argv += ["--workers", str(args.workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTE_STORAGE_")}
    base = f"http://127.0.0.1:{port}"
    with server(argv, f"{base}/-/ready", work / f"{target}.log", env) as pid:
        result = measure(target, pid, f"{base}/api/v1/write", args)
        if target == "memory":  # held in memory: the service reports the bytes of its sample data
            figures = service_figures(f"{base}/metrics")
            result.disk_bytes = figures.get("remote_storage_sample_bytes")
            result.sealed_bytes = figures.get("remote_storage_sealed_chunk_bytes")
            result.sealed_samples = figures.get("remote_storage_sealed_samples")
    if target != "memory":
        sizes = asyncio.run(compact_and_size(url, work))
        result.disk_bytes, result.sealed_bytes, result.sealed_samples, table, index, series = sizes
        result.notes.append(f"chunk table {table / max(result.sealed_samples, 1):.2f} B/sample")
        result.notes.append(f"index {index / max(series, 1):.0f} B/series")
    return result


def service_figures(url: str) -> dict[str, int]:
    """The service's unlabelled ``remote_storage_*`` gauges from its ``/metrics`` page."""
    figures: dict[str, int] = {}
    with urllib.request.urlopen(url, timeout=60) as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("remote_storage_") and value:
                figures[name] = int(float(value))
    return figures


#: The tables of the series index (schema 4), whose bytes with their indexes are "index B/series".
INDEX_TABLES = ("rs_series", "rs_pairs", "rs_postings")


async def compact_and_size(url: str, work: Path) -> tuple[int, int, int, int, int, int]:
    """Compact everything into chunks, then (database bytes, chunk data bytes, samples in chunks,
    bytes of the chunk table with its key and pages, bytes of the series index, series)."""
    from remote_storage.backends.sql import SQLStorage

    storage = SQLStorage.from_url(url)
    await storage.start()
    try:
        await storage.compact(2**62)
    finally:
        await storage.close()
    if url.startswith("sqlite"):
        path = work / "data.db"
        with sqlite3.connect(path) as conn:
            conn.execute("VACUUM")
            pages = (
                conn.execute("PRAGMA page_count").fetchone()[0]
                * conn.execute("PRAGMA page_size").fetchone()[0]
            )
            chunk, count = conn.execute(
                "SELECT coalesce(sum(length(data)), 0), coalesce(sum(count), 0) FROM rs_chunks"
            ).fetchone()
            (table,) = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'rs_chunks'").fetchone()
            (index,) = conn.execute(
                "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                f"(SELECT name FROM sqlite_master WHERE tbl_name IN {INDEX_TABLES})"
            ).fetchone()
            (series,) = conn.execute("SELECT count(*) FROM rs_series").fetchone()
        return int(pages), int(chunk), int(count), int(table), int(index), int(series)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL")
        total = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "WHERE c.relname LIKE 'rs\\_%' AND c.relkind = 'r'"
        ).fetchone()[0]
        chunk, count = conn.execute(
            "SELECT coalesce(sum(length(data)), 0), coalesce(sum(count), 0) FROM rs_chunks"
        ).fetchone()
        (table,) = conn.execute("SELECT pg_total_relation_size('rs_chunks')").fetchone()
        (index,) = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND c.relkind = 'r'",  # PostgreSQL keeps no rs_postings
            (list(INDEX_TABLES),),
        ).fetchone()
        (series,) = conn.execute("SELECT count(*) FROM rs_series").fetchone()
    return int(total), int(chunk), int(count), int(table), int(index), int(series)


def fmt(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if value is not None else "-"


def ratio(value: float | None, base: float | None, digits: int = 2) -> str:
    if value is None or not base:
        return ""
    return f" ({value / base:.{digits}f}x)"


def print_table(best: dict[str, Result], args: argparse.Namespace) -> None:
    base = best.get("prometheus")
    base_cpu = base.cpu_per_million if base else None
    print(
        f"\nworkload: {args.series:,} series x 10 labels, {args.series_per_request:,} series/request, "
        f"{args.requests:,} requests, concurrency {args.concurrency}, values {args.values}; "
        f"best of {args.rounds} round(s); ratios against Prometheus' receiver in the same run (vs VM: "
        f"against VictoriaMetrics'); cores: server CPU seconds per second of the run\n"
    )
    peer = best.get("victoria-metrics")
    header = (
        f"{'target':<18}{'samples/s':>22}{'vs VM':>8}{'CPU s / M samples':>24}{'cores':>7}"
        f"{'peak RSS MiB':>20}{'stored B/sample':>20}{'sealed B/sample':>20}"
    )
    print(header)
    print("-" * len(header))
    for name, r in best.items():
        bps = r.bytes_per_sample
        print(
            f"{name:<18}"
            f"{r.rate:>12,.0f}{ratio(r.rate, base.rate if base else None):>10}"
            f"{ratio(r.rate, peer.rate if peer else None):>8}"
            f"{r.cpu_per_million:>14.2f}{ratio(r.cpu_per_million, base_cpu):>10}"
            f"{fmt(r.cpu_seconds / r.seconds if r.seconds else None, 1):>7}"
            f"{r.peak_rss / 2**20:>10.0f}{ratio(r.peak_rss, base.peak_rss if base else None):>10}"
            f"{fmt(bps):>10}"
            f"{ratio(bps, base.bytes_per_sample if base else None):>10}"
            + f"{fmt(r.sealed_per_sample, 3):>10}"  # same encoding everywhere: differences are small
            + f"{ratio(r.sealed_per_sample, base.sealed_per_sample if base else None, 3):>11}"
            + (f"   {'; '.join(r.notes)}" if r.notes else "")
            + (f"   ERRORS: {r.errors}" if r.errors else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="prometheus,victoria-metrics,memory,sqlite,postgresql,null")
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--series-per-request", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--values", choices=["realistic", "random"], default="realistic")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="serve --workers for the SQL targets")
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    best: dict[str, Result] = {}
    with (
        tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp,
        contextmanager(_postgres)(targets, Path(tmp)) as pg,
    ):
        for round_number in range(args.rounds):
            for target in targets:
                work = Path(tmp) / f"{target}-{round_number}"
                work.mkdir()
                try:
                    result = run_target(target, work, args, pg)
                except FileNotFoundError as exc:
                    print(f"skipping {target}: {exc}", file=sys.stderr)
                    continue
                print(
                    f"round {round_number + 1} {target}: {result.rate:,.0f} samples/s, "
                    f"{result.cpu_per_million:.2f} CPU s/M, errors {result.errors}",
                    file=sys.stderr,
                )
                if target not in best or result.rate > best[target].rate:
                    best[target] = result
                if result.errors:  # what they were, and what the server said, before its log goes
                    print(f"failed requests: {result.failures}", file=sys.stderr)
                    for log in sorted(work.glob("*.log")):
                        lines = log.read_text(errors="replace").splitlines()
                        said = [line for line in lines if "ERROR" in line or "WARNING" in line]
                        print(f"{log.name}: {len(said)} warnings and errors, the last ones:", file=sys.stderr)
                        for line in said[-20:]:
                            print(f"  {line[:300]}", file=sys.stderr)
                shutil.rmtree(work, ignore_errors=True)
    print_table(best, args)
    return 0


def run_target(target: str, work: Path, args: argparse.Namespace, pg: Callable[[], str]) -> Result:
    if target == "prometheus":
        return bench_prometheus(work, args)
    if target == "victoria-metrics":
        return bench_victoria(work, args)
    if target == "null":
        return bench_null(work, args)
    if target == "memory":
        return bench_service("memory", "memory://", work, args)
    if target == "sqlite":
        return bench_service("sqlite", f"sqlite:///{work}/data.db", work, args)
    if target == "postgresql":
        return bench_service("postgresql", pg(), work, args)
    raise SystemExit(f"unknown target {target!r}")


def _postgres(targets: list[str], tmp: Path) -> Iterator[Callable[[], str]]:
    """A private PostgreSQL server when a target needs one; yields a fresh-database factory."""
    if "postgresql" not in targets:
        yield lambda: ""
        return
    from tests.support.postgres import start_postgres

    with start_postgres(tmp / "pg-logs") as server:
        numbers = iter(range(1, 1_000_000))

        def fresh() -> str:
            name = f"bench_{next(numbers)}"
            with server.connect(autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return server.url(name)  # dropped with the whole server at the end

        yield fresh


if __name__ == "__main__":
    sys.exit(main())
