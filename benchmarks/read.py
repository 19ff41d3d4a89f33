"""Remote-read benchmark: this service's backends against Prometheus' own ``/api/v1/read``.

Run from the repository root::

    python benchmarks/read.py                                  # 100,000 series x 80 samples
    python benchmarks/read.py --series 20000 --rounds 40 --targets prometheus,memory

Each target is loaded with the same samples through remote write (loadgen:
``--series`` series, ``--rounds`` samples each, scraped every 15 s), then one
remote-read request selects every series over the whole range, answered once
as ``STREAMED_XOR_CHUNKS`` and once as ``SAMPLES``. Printed per target and
mode: samples returned per second (decoded and counted by this script, so
every answer is checked to hold all samples) and the growth of the server's
RSS during the read, each also as a ratio to Prometheus in the same run.

Targets: ``prometheus`` (Debian package), ``memory``, ``sqlite`` (read right
after the load: the samples are still one row each, as written),
``sqlite-head`` (the service seals every second, then is started again with
its default maintenance and read: the state of the head, the newest 15
minutes, in service; use ``--rounds 60`` or fewer so that all of it is head)
and ``sqlite-compacted`` (the service compacts every second
with a head of 1 ms; once it has, the service is started again with its
default maintenance and read: the state of data older than the head).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import Sampler, group_usage, prometheus_argv, server, service_argv  # noqa: E402
from remote_storage.chunks import decode_chunk  # noqa: E402
from remote_storage.matchers import Matcher  # noqa: E402
from remote_storage.protocol import snappy, streamed  # noqa: E402
from remote_storage.protocol.negotiation import ResponseType  # noqa: E402
from remote_storage.protocol.pb import remote_pb2  # noqa: E402
from remote_storage.protocol.read import encode_read_request  # noqa: E402
from remote_storage.storage import Query, ReadRequest  # noqa: E402
from tests.support.net import free_port  # noqa: E402

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


@dataclass
class Read:
    samples: int
    seconds: float
    rss_growth: int

    @property
    def rate(self) -> float:
        return self.samples / self.seconds


def load(url: str, args: argparse.Namespace) -> int:
    requests = args.series * args.rounds // args.series_per_request
    argv = [
        sys.executable, "-m", "remote_storage.loadgen", url, "--json", "--quiet",
        "--series", str(args.series), "--series-per-request", str(args.series_per_request),
        "--requests", str(requests),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if not done.stdout.strip():
        raise RuntimeError(f"loadgen printed nothing: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    if summary["requests_failed"]:
        raise RuntimeError(f"loading failed: {summary['non_2xx']} {summary['transport_errors']}")
    return int(summary["samples_accepted"])


def count_streamed(body: bytes) -> int:
    samples = 0
    for message in streamed.decode_frames(body):
        for chunk in message.chunked_series[0].chunks:
            samples += len(decode_chunk(chunk.data)[0])
    return samples


def count_samples(body: bytes) -> int:
    message = remote_pb2.ReadResponse.FromString(snappy.decompress(body, 1 << 34))
    return sum(len(ts.samples) for result in message.results for ts in result.timeseries)


def read(url: str, pid: int, mode: ResponseType) -> Read:
    query = Query(-(2**62), 2**62, (Matcher.parse("__name__", "=~", ".+"),))
    body = snappy.compress(encode_read_request(ReadRequest((query,)), [mode]))
    request = urllib.request.Request(url, data=body, headers=HEADERS, method="POST")
    _, rss_before = group_usage(pid)
    sampler = Sampler(pid)
    sampler.start()
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=3600) as response:
        data = response.read()
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    samples = count_streamed(data) if mode is ResponseType.STREAMED_XOR_CHUNKS else count_samples(data)
    return Read(samples, seconds, max(sampler.peak - rss_before, 0))


def wait_for_compaction(path: Path, series: int, timeout: float = 900.0) -> None:
    """Until the service has moved all but at most one sample per series into chunks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM rs_samples").fetchone()
        if rows <= series:
            return
        time.sleep(2)
    raise RuntimeError(f"compaction did not finish within {timeout:.0f} s")


def wait_for_sealing(path: Path, series: int, timeout: float = 900.0) -> None:
    """Until the service has sealed all but the newest two minutes of rows into blocks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM rs_samples").fetchone()
            (blocks,) = conn.execute("SELECT count(*) FROM rs_blocks").fetchone()
        if blocks and rows <= 2 * 4 * series:  # two minutes at 15 s
            return
        time.sleep(2)
    raise RuntimeError(f"sealing did not finish within {timeout:.0f} s")


def read_modes(base: str, pid: int, target: str, loaded: int) -> dict[str, Read]:
    results = {}
    for mode in (ResponseType.STREAMED_XOR_CHUNKS, ResponseType.SAMPLES):
        result = read(f"{base}/api/v1/read", pid, mode)
        if result.samples != loaded:
            raise RuntimeError(f"{target} {mode.name}: {result.samples} samples read, {loaded} written")
        results[mode.name] = result
        print(f"{target} {mode.name}: {result.rate:,.0f} samples/s", file=sys.stderr)
    return results


def bench(target: str, work: Path, args: argparse.Namespace) -> dict[str, Read]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    read_options = ("--read-sample-limit", "0", "--read-timeout", "1h")
    if target == "prometheus":
        argv = prometheus_argv(work, port, "--storage.remote.read-sample-limit=0")
    else:
        url = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{work}/data.db",
            # the service compacts all but the newest millisecond, every second
            "sqlite-compacted": f"sqlite:///{work}/data.db?head=1ms&compact_interval=1s",
            # the service seals (and compacts what is older than the default head) every second
            "sqlite-head": f"sqlite:///{work}/data.db?compact_interval=1s",
        }[target]
        argv = service_argv(port, url, *read_options)
    results = {}
    with server(argv, f"{base}/-/ready", work / f"{target}.log") as pid:
        loaded = load(f"{base}/api/v1/write", args)
        if target == "sqlite-compacted":
            wait_for_compaction(work / "data.db", args.series)
        elif target == "sqlite-head":
            wait_for_sealing(work / "data.db", args.series)
        else:
            results = read_modes(base, pid, target, loaded)
    if target in ("sqlite-compacted", "sqlite-head"):
        # Read from a service started again with the default maintenance (first pass after a
        # minute), as the data would be read in service: not during a compaction every second.
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = service_argv(port, f"sqlite:///{work}/data.db", *read_options)
        with server(argv, f"{base}/-/ready", work / f"{target}-read.log") as pid:
            results = read_modes(base, pid, target, loaded)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="prometheus,memory,sqlite,sqlite-compacted")
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=80, help="samples per series")
    parser.add_argument("--series-per-request", type=int, default=2_000)
    args = parser.parse_args()
    table: dict[str, dict[str, Read]] = {}
    with tempfile.TemporaryDirectory(prefix="rs-read-") as tmp:
        for target in [t.strip() for t in args.targets.split(",") if t.strip()]:
            work = Path(tmp) / target
            work.mkdir()
            table[target] = bench(target, work, args)
    print(f"\n{args.series:,} series x {args.rounds} samples; one request selecting everything\n")
    header = f"{'target':<18}{'mode':<22}{'samples/s':>22}{'RSS growth MiB':>22}"
    print(header)
    print("-" * len(header))
    for target, modes in table.items():
        for mode, r in modes.items():
            base = table.get("prometheus", {}).get(mode)
            rate_ratio = f" ({r.rate / base.rate:.2f}x)" if base else ""
            # A ratio to a growth of less than 10 MiB says nothing: the page cache and allocator noise.
            telling = base is not None and base.rss_growth >= 10 * 2**20
            rss_ratio = f" ({r.rss_growth / base.rss_growth:.2f}x)" if base and telling else ""
            rss = r.rss_growth / 2**20
            print(f"{target:<18}{mode:<22}{r.rate:>12,.0f}{rate_ratio:>10}{rss:>12.0f}{rss_ratio:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
