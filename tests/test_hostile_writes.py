"""Hostile writes against the service process on every shipped backend: each refused with 400.

The cases are the ones an operator found storing or failing before: 16 MiB
label names and values, 5,000 labels, 1 MiB values, a request of more
series than any sender batches, values sent with the wrong wire type, clocks
far ahead. Each is answered 400 with a one-line reason naming the flag
(never a 5xx a sender would retry forever), nothing of it is stored, the
service keeps serving, and `/metrics` counts the refusal by reason.
"""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from remote_storage.matchers import Matcher
from remote_storage.protocol import snappy
from remote_storage.protocol.pb import remote_pb2, types_pb2
from tests.support.adapter import Adapter, start_adapter
from tests.support.load import HttpClient
from tests.support.procs import Processes
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, read_results, series, v1_body

NOW = int(time.time() * 1000)


def one_series(*pairs: tuple[str, str]) -> bytes:
    message = remote_pb2.WriteRequest()
    good = message.timeseries.add()  # a valid series beside the bad one: not stored either
    good.labels.add(name="__name__", value="hostile_neighbour")
    good.samples.add(value=1.0, timestamp=NOW)
    entry = message.timeseries.add()
    for name, value in pairs:
        entry.labels.add(name=name, value=value)
    entry.samples.add(value=1.0, timestamp=NOW)
    return snappy.compress(message.SerializeToString())


def many_series(count: int) -> bytes:
    message = remote_pb2.WriteRequest()
    for index in range(count):
        entry = message.timeseries.add()
        entry.labels.add(name="__name__", value="hostile_many")
        entry.labels.add(name="i", value=str(index))
        entry.samples.add(value=1.0, timestamp=NOW)
    return snappy.compress(message.SerializeToString())


def varint_value() -> bytes:
    entry = types_pb2.TimeSeries()
    entry.labels.add(name="__name__", value="hostile_varint")
    sample = b"\x08\x05\x10" + bytes([0x80 | (NOW & 0x7F)]) + bytes([(NOW >> 7) & 0x7F])  # value as varint
    body = entry.SerializeToString() + b"\x12" + bytes([len(sample)]) + sample
    return snappy.compress(b"\x0a" + bytes([len(body)]) + body)


MIB = 1 << 20
CASES = {
    "16 MiB label value": (
        lambda: one_series(("__name__", "up"), ("v", "x" * 16 * MIB)),
        "label_value_too_long",
    ),
    "16 MiB label name": (
        lambda: one_series(("__name__", "up"), ("n" * 16 * MIB, "x")),
        "label_name_too_long",
    ),
    "1 MiB label value": (lambda: one_series(("__name__", "up"), ("v", "y" * MIB)), "label_value_too_long"),
    "5,000 labels": (
        lambda: one_series(("__name__", "up"), *((f"l{i:05}", "v") for i in range(5000))),
        "too_many_labels",
    ),
    "100,001 series": (lambda: many_series(100_001), "too_many_series"),
    "value sent as varint": (varint_value, "malformed"),
    "an hour ahead": (
        lambda: v1_body([series([NOW + 3_600_000], [1.0], __name__="hostile_future")]),
        "sample_too_new",
    ),
}


def stored_names(service: Adapter) -> list[str]:
    body = read_body((0, NOW + 7_200_000, [Matcher.parse("__name__", "=~", ".+")]))
    request = urllib.request.Request(service.read_url, data=body, headers=READ_HEADERS, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        [result] = read_results(response.read())
    return sorted(s.labels.metric_name for s in result.series)


def rejected(service: Adapter) -> dict[str, float]:
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "remote_storage_write_requests_rejected":
            return {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}
    return {}


def test_hostile_writes_are_refused_with_400_and_leave_nothing(
    processes: Processes, any_storage_url: str
) -> None:
    # one process, so that its /metrics counts every refusal
    service = start_adapter(processes, any_storage_url, extra_args=("--workers", "1"))
    service.wait_ready(30.0)
    with HttpClient(service.address, timeout=60.0) as client:
        status, _ = client.post(
            "/api/v1/write", v1_body([series([NOW], [1.0], __name__="baseline")]), V1_HEADERS
        )
        assert status == 204
        for case, (build, reason) in CASES.items():
            status, answer = client.post("/api/v1/write", build(), V1_HEADERS)
            text = answer.decode()
            assert status == 400, f"{case}: {status} {text[:300]}"
            assert len(answer) < 1000 and text.count("\n") == 1, f"{case}: not one short line: {text[:300]}"
            if reason != "malformed":
                assert "--max-" in text or "--future-grace-period" in text, f"{case}: no flag named: {text}"
    assert stored_names(service) == ["baseline"]
    counts = rejected(service)
    for case, (_, reason) in CASES.items():
        assert counts.get(reason, 0) >= 1, f"{case}: {reason} not counted in {counts}"
    service.process.check_alive()
