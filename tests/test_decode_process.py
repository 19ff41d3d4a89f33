"""Remote-write bodies decoded in a child process (``--decoder process``).

The child must give the backend exactly what decoding in the serving process
gives (labels, samples, bit-exact values), leave every body it cannot answer
to the serving process (so status codes and messages stay the same), keep
the labels of every number it sent, and never outlive the server.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import struct
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from remote_storage.decode_process import DecodeProcess, DecoderMode, use_process
from remote_storage.protocol import snappy
from remote_storage.protocol.limits import WriteLimits
from remote_storage.protocol.validation import LabelValidator
from remote_storage.protocol.write import decode_v1, encode_v1
from remote_storage.storage import Labels, MetricMetadata, MetricType, TimeSeries, WriteRequest
from tests.support.adapter import start_adapter
from tests.support.net import http_get, poll_until
from tests.support.procs import Processes, child_pids, is_running
from tests.support.wire import V1_HEADERS, series, v1_body

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
#: Seconds a started child may take to answer, or a killed server's child to exit.
BOUND = 30.0


def decoded_rows(request: WriteRequest) -> list[tuple[Labels, int, int]]:
    """(labels, timestamp, value bits) of every sample, in request order."""
    rows = []
    for entry in request.series:
        for timestamp, value in zip(entry.timestamps, entry.values, strict=True):
            rows.append((entry.labels, timestamp, struct.unpack("<q", struct.pack("<d", value))[0]))
    return rows


def body_of(entries: Sequence[TimeSeries]) -> bytes:
    return v1_body(entries)


async def through_child(bodies: Sequence[bytes], decoder: DecodeProcess) -> list[WriteRequest | None]:
    await decoder.start()
    try:
        return [await asyncio.wait_for(decoder.decode_v1(body, 1 << 24), BOUND) for body in bodies]
    finally:
        await decoder.close()


def test_the_child_gives_what_the_serving_process_decodes() -> None:
    bodies = []
    for round_ in range(3):  # the same series again: known numbers, no labels sent
        entries = [
            series([1_000 * round_ + 7], [value], __name__="up", job="node", instance=f"host-{i}")
            for i, value in enumerate([1.5, -0.0, math.inf, STALE_NAN, 1e-300, float(round_)])
        ]
        entries.append(series([round_], [2.0], __name__="zz", b="2", a="1"))  # unsorted names
        bodies.append(body_of(entries))
    answers = asyncio.run(through_child(bodies, DecodeProcess(LabelValidator())))
    for body, answer in zip(bodies, answers, strict=True):
        assert answer is not None
        expected = decode_v1(snappy.decompress(body, 1 << 24), LabelValidator())
        assert decoded_rows(answer) == decoded_rows(expected)
    first, third = answers[0], answers[2]
    assert first is not None and third is not None and first.batch is not None and third.batch is not None
    assert list(first.batch.keys) == list(third.batch.keys), "a series keeps its number"
    assert len(set(first.batch.keys)) == 7


def test_bodies_the_child_cannot_answer_are_left_to_the_serving_process() -> None:
    valid = body_of([series([1], [1.0], __name__="up")])
    declined = [
        b"not snappy at all",
        body_of([series([1], [1.0], job="no-name")]),  # invalid labels: the serving process says why
        body_of([series([1], [1.0], __name__="up", a="1"), series([1], [1.0], __name__="up", **{"": "x"})]),
        snappy.compress(
            encode_v1(
                [series([1], [1.0], __name__="up")],
                [MetricMetadata("up", MetricType.GAUGE, "help", "")],
            )
        ),
        body_of([series([1, 2], [1.0, 2.0], __name__="two_samples")]),  # not one sample per entry
    ]
    answers = asyncio.run(through_child([*declined, valid], DecodeProcess(LabelValidator())))
    assert answers[:-1] == [None] * len(declined)
    last = answers[-1]
    assert last is not None and decoded_rows(last) == [(Labels((("__name__", "up"),)), 1, 0x3FF0000000000000)]


def test_numbers_of_a_refused_body_are_not_kept() -> None:
    """A body refused half-way (one invalid label set) must not leave numbers the server never got."""
    good = series([1], [1.0], __name__="up", job="a")
    refused = body_of([good, series([1], [1.0], job="no-name")])
    answers = asyncio.run(through_child([refused, body_of([good])], DecodeProcess(LabelValidator())))
    assert answers[0] is None
    second = answers[1]
    assert second is not None and second.series[0].labels == good.labels


def test_the_child_gets_its_settings_over_its_socket() -> None:
    """Limits reach the child without riding on its command line."""

    async def scenario() -> tuple[str, WriteRequest | None, WriteRequest | None]:
        decoder = DecodeProcess(LabelValidator(limits=WriteLimits(max_labels_per_series=2)))
        await decoder.start()
        try:
            assert decoder._child is not None
            command = Path(f"/proc/{decoder._child.pid}/cmdline").read_bytes().decode()
            fits = body_of([series([1], [1.0], __name__="up", job="a")])
            over = body_of([series([1], [1.0], __name__="up", job="a", instance="b")])
            return (
                command,
                await asyncio.wait_for(decoder.decode_v1(fits, 1 << 24), BOUND),
                await asyncio.wait_for(decoder.decode_v1(over, 1 << 24), BOUND),
            )
        finally:
            await decoder.close()

    command, fits, over = asyncio.run(scenario())
    assert "max_labels_per_series" not in command and len(command) < 200
    assert fits is not None and len(fits.series) == 1
    assert over is None, "three labels are over the child's limit: the serving process says why"


def test_new_labels_come_with_the_columns_only_once() -> None:
    """Rows of known and new series mixed, values bit-exact, labels of new numbers kept."""
    known = [series([10], [1.0], __name__="a", i=str(i)) for i in range(3)]
    later = [
        *known[:2],
        series([20], [STALE_NAN], __name__="b"),
        known[2],
        series([21], [-0.0], __name__="c"),
    ]
    bodies = [body_of(known), body_of(later)]
    first, second = asyncio.run(through_child(bodies, DecodeProcess(LabelValidator())))
    assert first is not None and second is not None and second.batch is not None
    assert decoded_rows(second) == decoded_rows(
        decode_v1(snappy.decompress(bodies[1], 1 << 24), LabelValidator())
    )
    assert len(set(second.batch.keys)) == 5


def test_numbering_starts_afresh_and_older_labels_stay_readable() -> None:
    async def scenario() -> list[tuple[list[int], list[str], str]]:
        decoder = DecodeProcess(LabelValidator(), max_known=5)
        await decoder.start()
        seen = []
        try:
            first_key = None
            for n in range(6):
                body = body_of([series([n], [float(n)], __name__="m", i=str(n * 10 + k)) for k in range(3)])
                answer = await asyncio.wait_for(decoder.decode_v1(body, 1 << 24), BOUND)
                assert answer is not None and answer.batch is not None
                keys = [int(key) for key in answer.batch.keys]
                first_key = keys[0] if first_key is None else first_key
                # the backend asks for labels while it stores the request, as here
                names = [answer.batch.labels(key).get("i") for key in keys]
                previous = seen[-1][0][0] if seen else keys[0]
                seen.append((keys, names, answer.batch.labels(previous).get("i")))
        finally:
            await decoder.close()
        return seen

    numbers: set[int] = set()
    for n, (keys, names, previous) in enumerate(asyncio.run(scenario())):
        assert not numbers.intersection(keys), "a number is never given to another label set"
        numbers.update(keys)
        assert names == [str(n * 10 + k) for k in range(3)]
        # a request under way when the numbering starts afresh still finds its labels
        assert previous == str(max(n - 1, 0) * 10)


def test_a_dead_child_hands_decoding_back() -> None:
    async def scenario() -> tuple[WriteRequest | None, WriteRequest | None]:
        decoder = DecodeProcess(LabelValidator())
        await decoder.start()
        try:
            body = body_of([series([1], [1.0], __name__="up")])
            before = await asyncio.wait_for(decoder.decode_v1(body, 1 << 24), BOUND)
            assert decoder._child is not None
            decoder._child.kill()

            async def gone() -> None:
                while decoder.running:
                    await asyncio.sleep(0.01)  # polls the reader's state, bounded by wait_for below

            await asyncio.wait_for(gone(), BOUND)
            after = await asyncio.wait_for(decoder.decode_v1(body, 1 << 24), BOUND)
            return before, after
        finally:
            await decoder.close()

    before, after = asyncio.run(scenario())
    assert before is not None and after is None


@pytest.mark.parametrize(
    ("mode", "workers", "cpus", "expected"),
    [
        (DecoderMode.AUTO, 1, 2, True),
        (DecoderMode.AUTO, 1, 1, False),
        (DecoderMode.AUTO, 2, 8, False),
        (DecoderMode.AUTO, 1, None, False),
        (DecoderMode.PROCESS, 4, 1, True),
        (DecoderMode.INLINE, 1, 8, False),
    ],
)
def test_when_a_decode_process_runs(
    mode: DecoderMode, workers: int, cpus: int | None, expected: bool
) -> None:
    assert use_process(mode, workers, cpus) is expected


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers=V1_HEADERS, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=BOUND) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code)


def test_the_server_runs_one_and_it_stops_with_the_server(processes: Processes, tmp_path: Path) -> None:
    adapter = start_adapter(processes, "memory://", extra_args=("--decoder", "process"))
    adapter.wait_ready(BOUND)
    children = child_pids(adapter.process.pid)
    assert len(children) == 1, children
    assert (
        "decoder=process" in adapter.process.log_text()
        or '"decoder": "process"' in adapter.process.log_text()
    )
    assert post(adapter.write_url, body_of([series([1], [1.0], __name__="up")])) == 204
    assert post(adapter.write_url, body_of([series([1], [1.0], job="no-name")])) == 400
    metrics = http_get(f"{adapter.url}/metrics")[1].decode()
    assert 'remote_storage_write_bodies_decoded_total{where="decode_process"} 1.0' in metrics
    assert 'remote_storage_write_bodies_decoded_total{where="serving_process"} 1.0' in metrics
    os.kill(adapter.process.pid, signal.SIGKILL)
    poll_until(lambda: True if not is_running(children[0]) else None, BOUND, "the decode process to exit")


def test_inline_runs_none(processes: Processes) -> None:
    adapter = start_adapter(processes, "memory://", extra_args=("--decoder", "inline"))
    adapter.wait_ready(BOUND)
    assert child_pids(adapter.process.pid) == []
    assert post(adapter.write_url, body_of([series([1], [1.0], __name__="up")])) == 204
