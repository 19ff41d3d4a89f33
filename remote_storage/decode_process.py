"""Remote-write bodies decoded in a second process, so ingestion uses a second core.

One Python process runs one thing at a time, and a remote-write request
costs about as much to decompress, scan and check as it costs the backend to
store. With ``--decoder process`` (the default on a machine with two or more
cores and one server process) the server hands each remote-write 1.0 body,
still compressed, to one child process, which decompresses it, scans it
(:func:`remote_storage.protocol.wire.v1_scan.columns`), checks every new label
set and the request's limits, and answers with the samples as columns. The
serving process then stores them while the child decodes the next body.

Series keys cross the process boundary as integers: the child keeps the
encoded label bytes of every label set it has seen and gives each a number,
never reused, so equal numbers always mean equal label sets (the contract of
:attr:`~remote_storage.storage.TimeSeries.key`). The first time a number is
sent, its validated labels go with it. The serving process keeps those
labels for the backend to ask for; at most ``max_known`` (then the child
starts numbering afresh, and the older numbers are dropped a generation
later).

The answer is framed as raw columns (:data:`_ANSWER`, then the numbers,
timestamps and values as native int64/int64/float64), so the serving
process reads it without unpickling; only the labels of new numbers, rare
once every series has been seen, are pickled. The child's settings are the
first frame it reads from its socket.

Everything the child does not answer (remote write 2.0, bodies of another
shape, bodies with metadata, anything invalid, a child that died) is decoded
in the serving process as without this module, so every status code and
message stays exactly the same; only well-formed bodies of the shape
Prometheus sends take the second core.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Hashable
from dataclasses import asdict
from typing import cast

from remote_storage.protocol import snappy
from remote_storage.protocol.limits import WriteLimits, check_request
from remote_storage.protocol.validation import LabelValidator, NameScheme
from remote_storage.protocol.wire.v1_scan import new_interner
from remote_storage.protocol.write import labels_from_key
from remote_storage.storage import Labels, SampleBatch, WriteRequest

__all__ = ["DecodeProcess", "DecoderMode", "use_process"]

log = logging.getLogger(__name__)

#: request id, payload bytes
_FRAME = struct.Struct("<QQ")
#: decompressed-size limit, now (ms since the epoch)
_REQUEST = struct.Struct("<Qq")
#: after ``_OK``: rows, the generation's first number, bytes of the pickled new labels (0: none);
#: then the rows' numbers (int64), timestamps (int64) and values (float64), then the new labels
_ANSWER = struct.Struct("<QQQ")
#: bytes asked of the kernel for each side's socket buffer: a body or an answer in one go
_SOCKET_BUFFER = 4 << 20
_OK = b"\x00"
_DECODE_HERE = b"\x01"
#: seconds to wait for the exit status of a child whose socket closed, and for one told to stop
_EXIT_WAIT = 10.0
#: label sets the child numbers before it starts afresh
MAX_KNOWN = 2_000_000


class DecoderMode(enum.Enum):
    """Where remote-write bodies are decoded (``--decoder``)."""

    #: ``process`` when the machine has two cores or more and the server runs one process
    AUTO = "auto"
    #: in a child process of each server process
    PROCESS = "process"
    #: in the serving process itself
    INLINE = "inline"


def use_process(mode: DecoderMode, workers: int, cpus: int | None) -> bool:
    """Whether one of ``workers`` server processes on ``cpus`` cores runs a decode process."""
    if mode is DecoderMode.PROCESS:
        return True
    if mode is DecoderMode.INLINE:
        return False
    return workers <= 1 and (cpus or 1) >= 2


class _Numbering:
    """The child's side: encoded label bytes -> number, with the labels of numbers not yet sent.

    The numbers of known label sets are kept in an :class:`~remote_storage.protocol.wire.v1_scan.Interner`,
    which scans a body straight into its rows' numbers; only label sets it does not know yet
    become Python objects, to be validated and numbered here.
    """

    def __init__(self, validator: LabelValidator, max_known: int) -> None:
        self.validator = validator
        self.max_known = max_known
        self.interner = new_interner()
        self.next = 1
        self.generation_start = 1

    def decode(self, body: bytes, limit: int, now_ms: int) -> list[bytes]:
        """The answer to one body, in pieces: ``_OK`` and columns (:data:`_ANSWER`), or ``_DECODE_HERE``."""
        interner = self.interner
        try:
            payload = snappy.decompress(body, limit)
            found = interner.columns(payload)
            if found is not None and found.missing and len(interner) + len(found) > self.max_known:
                interner.clear()  # start numbering afresh: every row of this body is new again
                self.generation_start = self.next
                found = interner.columns(payload)
        except Exception:
            return [_DECODE_HERE]
        if found is None or found.metadata or not len(found):
            return [_DECODE_HERE]
        keys = array("q")
        keys.frombytes(found.numbers)
        new: dict[bytes, tuple[int, Labels]] = {}
        number = self.next
        try:
            for row, key in found.missing:
                entry = new.get(key)
                if entry is None:
                    entry = new[key] = (number, labels_from_key(key, self.validator))
                    number += 1
                keys[row] = entry[0]
        except Exception:
            return [_DECODE_HERE]
        batch = SampleBatch(keys, found.timestamps, found.values, _no_labels)
        try:
            check_request(WriteRequest(batch=batch), self.validator.limits, now_ms)
        except Exception:
            return [_DECODE_HERE]
        # Only an answered request makes its numbers known.
        fresh = b""
        if new:
            for key, (known, _) in new.items():
                interner.add(key, known)
            self.next = number
            labels = [(known, tuple(pairs)) for known, pairs in new.values()]
            fresh = pickle.dumps(labels, protocol=pickle.HIGHEST_PROTOCOL)
        header = _OK + _ANSWER.pack(len(keys), self.generation_start, len(fresh))
        return [header, found.numbers if not new else keys.tobytes(), found.timestamps, found.values, fresh]


def _no_labels(key: Hashable) -> Labels:
    raise AssertionError("the decode process never asks for labels")


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> tuple[int, bytes] | None:
    """(request id, payload) of the next frame, or None once the socket closed."""
    header = _read_exactly(sock, _FRAME.size)
    if header is None:
        return None
    request_id, size = _FRAME.unpack(header)
    payload = _read_exactly(sock, size)
    return None if payload is None else (request_id, payload)


def child_main(fd: int) -> None:
    """The decode process: read its settings, then answer bodies from the socket ``fd`` until it closes."""
    from remote_storage.parent import exit_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    exit_with_parent(os.getppid())
    sock = socket.socket(fileno=fd)
    _widen(sock)
    first = _read_frame(sock)
    if first is None:
        return
    settings = pickle.loads(first[1])
    validator = LabelValidator(NameScheme(settings["scheme"]), limits=WriteLimits(**settings["limits"]))
    numbering = _Numbering(validator, settings["max_known"])
    while True:
        frame = _read_frame(sock)
        if frame is None:
            return
        request_id, payload = frame
        limit, now_ms = _REQUEST.unpack_from(payload)
        answer = numbering.decode(payload[_REQUEST.size :], limit, now_ms)
        size = sum(map(len, answer))
        sock.sendall(b"".join([_FRAME.pack(request_id, size), *answer]))


def _widen(sock: socket.socket) -> None:
    """Ask for socket buffers that hold a whole body or answer, so each crosses in one write."""
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):  # the kernel caps it (net.core.*mem_max); smaller works too
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)


class DecodeProcess:
    """The serving process' side: sends bodies to the child, builds write requests from its answers."""

    def __init__(self, validator: LabelValidator, max_known: int = MAX_KNOWN) -> None:
        self._config = {
            "scheme": (NameScheme.LEGACY if validator.legacy else NameScheme.UTF8).value,
            "limits": asdict(validator.limits),
            "max_known": max_known,
        }
        self._child: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[SampleBatch | None]] = {}
        self._next_id = 0
        self._labels: dict[int, Labels] = {}
        self._older: dict[int, Labels] = {}
        self._generation_start = 1
        #: bodies the child answered, and bodies it left to the serving process (for tests and /metrics)
        self.answered = 0
        self.declined = 0

    @property
    def running(self) -> bool:
        return self._writer is not None

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        _widen(ours)
        code = f"from remote_storage.decode_process import child_main; child_main({theirs.fileno()})"
        self._child = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL
        )
        theirs.close()
        reader, self._writer = await asyncio.open_connection(sock=ours, limit=_SOCKET_BUFFER)
        config = pickle.dumps(self._config, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_FRAME.pack(0, len(config)) + config)
        self._reader_task = asyncio.create_task(self._read_answers(reader))
        log.debug("decode process %d started", self._child.pid)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        child, self._child = self._child, None
        if child is not None:
            try:
                await asyncio.to_thread(child.wait, _EXIT_WAIT)
            except subprocess.TimeoutExpired:
                child.kill()
                await asyncio.to_thread(child.wait)

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(_FRAME.size)
                request_id, size = _FRAME.unpack(header)
                answer = await reader.readexactly(size)
                # Parsed here, whether or not anyone still waits: the labels of new numbers
                # must be kept even when the request that brought them was given up.
                found = self._batch(answer) if answer[:1] == _OK else None
                future = self._pending.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(found)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer, self._writer = self._writer, None
            for future in self._pending.values():
                if not future.done():
                    future.set_result(None)
            self._pending.clear()
            if writer is None:
                return  # closed by close()
            writer.close()
            child = self._child
            code = None
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = await asyncio.to_thread(child.wait, _EXIT_WAIT)
            log.warning(
                "the decode process exited (status %s); remote-write bodies are decoded in the "
                "serving process from now on",
                code,
            )

    async def decode_v1(self, body: bytes, limit: int) -> WriteRequest | None:
        """The request of a remote-write 1.0 body, or None when the serving process must decode it."""
        writer = self._writer
        if writer is None:
            return None
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[SampleBatch | None] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        header = _FRAME.pack(request_id, _REQUEST.size + len(body))
        writer.write(b"".join((header, _REQUEST.pack(limit, time.time_ns() // 1_000_000), body)))
        try:
            await writer.drain()
            batch = await future
        except (ConnectionError, asyncio.CancelledError):
            self._pending.pop(request_id, None)
            raise
        if batch is None:
            self.declined += 1
            return None
        self.answered += 1
        return WriteRequest(batch=batch)

    def _batch(self, answer: bytes) -> SampleBatch:
        rows, generation_start, fresh_size = _ANSWER.unpack_from(answer, 1)
        at = 1 + _ANSWER.size
        size = 8 * rows
        keys = memoryview(answer)[at : at + size].cast("q").tolist()
        timestamps = answer[at + size : at + 2 * size]
        values = answer[at + 2 * size : at + 3 * size]
        fresh: list[tuple[int, tuple[tuple[str, str], ...]]] = (
            pickle.loads(memoryview(answer)[at + 3 * size : at + 3 * size + fresh_size]) if fresh_size else []
        )
        if generation_start != self._generation_start:
            # The child started numbering afresh: keep the last generation for requests under way.
            self._older, self._labels = self._labels, {}
            self._generation_start = generation_start
        labels = self._labels
        for number, pairs in fresh:
            labels[number] = Labels(pairs)
        return SampleBatch(keys, timestamps, values, self._labels_of)

    def _labels_of(self, key: Hashable) -> Labels:
        number = cast(int, key)
        found = self._labels.get(number)
        return self._older[number] if found is None else found
