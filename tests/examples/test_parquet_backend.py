"""examples/parquet_backend.py: the conformance kit, then a real Prometheus writing and reading back.

The kit runs twice: with a flush every 50 ms (reads come from Parquet files
and from memory, writes rewrite hours) and with one flush an hour (every
write lives in the write-ahead log until close or a crash).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.dataset
import pytest
from parquet_backend import ParquetStorage

from remote_storage.backends import InvalidStorageURL
from remote_storage.testing import BackendConformance
from tests.examples import scrape_and_write, start_example
from tests.support.net import Deadline, poll_until
from tests.support.procs import Processes
from tests.support.prometheus import (
    Prometheus,
    PrometheusConfig,
    diff_results,
    remote_read_from,
    series_points,
)

TEST_TIMEOUT = 120.0


class TestParquetConformance(BackendConformance):
    storage_factory = "parquet_backend:ParquetStorage.from_url"
    unsupported = frozenset({"histograms"})
    fsync_observable = True  # its log is synced with os.fsync

    def storage_url(self) -> str:
        return f"parquet://{self.tmp_path}/data?flush_seconds=0.05"


class TestParquetWithoutFlushesConformance(TestParquetConformance):
    def storage_url(self) -> str:
        return f"parquet://{self.tmp_path}/data?flush_seconds=3600"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("parquet://", "expected parquet:///path/to/directory"),
        ("parquet:///x?flush=1", "unknown options ['flush']"),
        ("parquet:///x?flush_seconds=0", "flush_seconds must be > 0"),
    ],
)
def test_from_url_rejects(url: str, reason: str) -> None:
    with pytest.raises(InvalidStorageURL, match=reason.replace("[", r"\[").replace("]", r"\]")):
        ParquetStorage.from_url(url)


TARGET = """\
# TYPE pq_value gauge
pq_value{kind="pi"} 3.141592653589793
pq_value{kind="tiny"} 5e-324
pq_value{kind="inf"} +Inf
# TYPE pq_requests_total counter
pq_requests_total{path="/"} 12345
"""


@pytest.mark.prometheus
def test_prometheus_writes_reads_back_and_parquet_holds_it(
    processes: Processes, prometheus: Callable[..., Prometheus], tmp_path: Path
) -> None:
    deadline = Deadline(TEST_TIMEOUT)
    directory = tmp_path / "parquet"
    args = ("--directory", str(directory), "--flush-seconds", "1")
    url, service = start_example(processes, "parquet_backend.py", *args, deadline=deadline)
    writer, start, end = scrape_and_write(prometheus, TARGET, f"{url}/api/v1/write", deadline)
    sent = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"
    poll_until(
        lambda: True if (writer.metric_values(sent) or [0])[0] >= end else None,
        deadline.remaining(),
        f"{sent} >= {end} on A",
    )
    reader = prometheus(
        "b",
        PrometheusConfig(remote_read=[remote_read_from(f"{url}/api/v1/read")]),
        timeout=deadline.remaining(30),
    )
    raw = f'{{job="target"}}[{round((end - start) * 1000) + 1}ms]'
    expected = writer.query(raw, end)
    assert len(series_points(expected)) >= 5, expected
    assert diff_results(expected, reader.query(raw, end)) == []

    service.stop()  # SIGTERM: close() flushes the hours and empties the log
    assert service.returncode == 0, service.describe()
    assert (directory / "_wal.jsonl").read_bytes() == b""
    table = pyarrow.dataset.dataset(directory, format="parquet", partitioning="hive").to_table(
        use_threads=False
    )
    assert set(table.column_names) == {"metric", "labels", "timestamp", "value", "tenant", "hour"}
    stored: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for row in table.to_pylist():
        labels = tuple(sorted(dict(row["labels"]).items()))
        assert row["metric"] == dict(labels)["__name__"]
        assert row["tenant"] == "default"
        stored.setdefault(labels, []).append((row["timestamp"].timestamp(), row["value"]))
    for labels, api_points in series_points(expected).items():
        in_files = {t: v for t, v in stored[labels]}
        for t, text in api_points:
            assert float(text) == in_files[t], (labels, t)
