"""The C extensions, imported once, and the one switch that turns them off.

Four modules have a C twin that ``pip install`` builds when a C compiler is
available (see ``setup.py``): the XOR chunk codec (:mod:`remote_storage.chunks`,
extension ``remote_storage._xor``), the remote-read records and stream frames
(:mod:`remote_storage.protocol.wire.records` and ``.frames``, extension
``remote_storage.protocol.wire._wire``) and the remote-write 1.0 scanner
(:mod:`remote_storage.protocol.wire.v1_scan`, extension
``remote_storage.protocol.wire._v1scan``) and the in-memory backend's append
of one sample per series (:mod:`remote_storage.backends.memory`, extension
``remote_storage.backends._memory_head``). Each twin gives the same results
as its Python original for every input; the tests run both side by side.

This module is the only one that imports the extensions, and the only place
that decides which implementation runs, once, at import:
:data:`IMPLEMENTATION` is ``"c"`` when all the extensions are built and
the environment variable ``REMOTE_STORAGE_PURE_PYTHON`` is not ``1``, else
``"python"``. The modules with a C twin pick their functions from
:data:`IMPLEMENTATION`; the server logs it at start (field ``codec``)::

    $ REMOTE_STORAGE_PURE_PYTHON=1 python -c "from remote_storage import native; print(native.IMPLEMENTATION)"
    python

:data:`xor`, :data:`wire`, :data:`v1scan` and :data:`memory_head` hold the extension modules
whenever they are built, whatever :data:`IMPLEMENTATION` says, so the tests
can compare the twins in one process.
"""

from __future__ import annotations

import importlib
import os
from array import array
from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol, TypeAlias, cast

__all__ = [
    "ENVIRONMENT_SWITCH",
    "IMPLEMENTATION",
    "MemoryHead",
    "V1Interner",
    "V1Scanner",
    "WireCodec",
    "XorCodec",
    "built",
    "memory_head",
    "sql_head",
    "sql_index",
    "v1scan",
    "wire",
    "xor",
]

#: The environment variable that, set to ``1``, makes the pure-Python code run.
ENVIRONMENT_SWITCH: Final = "REMOTE_STORAGE_PURE_PYTHON"


#: What the extensions take as bytes.
BytesLike: TypeAlias = bytes | bytearray | memoryview
#: A column of samples: ``array('q')``/``array('d')`` or a memoryview of one.
Column: TypeAlias = "array[Any] | memoryview"


class XorCodec(Protocol):
    """``remote_storage._xor`` (``_xor.c``), for the type checker.

    None from a function means "not here": the Python code then runs and
    raises its precise error.
    """

    def encode_chunk(self, timestamps: Column, values: Column, /) -> bytes | None: ...
    def pack_chunk(self, timestamps: Column, values: Column, /) -> bytes | None: ...
    def decode_chunk(self, data: BytesLike, /) -> tuple[array[int], array[float]] | None: ...


class WireCodec(Protocol):
    """``remote_storage.protocol.wire._wire`` (``_wire.c``), for the type checker."""

    def encode_samples(self, timestamps: Column, values: Column, /) -> bytes: ...
    def encode_labels(self, labels: tuple[tuple[str, str], ...], /) -> bytes: ...
    def encode_chunk_records(self, chunks: Sequence[Any], /) -> bytes: ...
    def encode_series_frames(
        self, query_index: int, label_records: BytesLike, chunks: Sequence[Any], max_frame_bytes: int, /
    ) -> tuple[bytes, int]: ...
    def encode_joined_labels(self, data: BytesLike, /) -> bytes | None: ...


class V1Interner(Protocol):
    """``_v1scan.Interner``: encoded label sets -> numbers, in C, for the type checker."""

    def columns(
        self, buf: BytesLike, /
    ) -> tuple[bytes, list[tuple[int, bytes]], bytes, bytes, list[bytes]] | None: ...
    def add(self, key: bytes, number: int, /) -> None: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...


class V1Scanner(Protocol):
    """``remote_storage.protocol.wire._v1scan`` (``_v1scan.c``), for the type checker."""

    def Interner(self) -> V1Interner: ...  # the extension's class
    def scan(
        self, buf: BytesLike, /
    ) -> tuple[dict[bytes, tuple[list[int], list[float]]], list[bytes]] | None: ...
    def columns(self, buf: BytesLike, /) -> tuple[list[bytes], bytes, bytes, list[bytes]] | None: ...


class MemoryHead(Protocol):
    """``remote_storage.backends._memory_head`` (``backends/_memory_head.c``), for the type checker."""

    def append_next(
        self,
        series: list[Any],
        newest: array[int],
        ids: list[int],
        timestamps: Sequence[int],
        values: Sequence[float],
        seal_at: int,
        /,
    ) -> list[Any] | None: ...


class SqlHead(Protocol):
    """``remote_storage.backends._sql_head`` (``backends/_sql_head.c``), for the type checker."""

    def install(self, connection: Any, /) -> bool: ...


class SqlIndex(Protocol):
    """``remote_storage.backends._sql_index`` (``backends/_sql_index.c``), for the type checker."""

    def install(self, connection: Any, /) -> bool: ...
    def unpack_pairs(self, data: BytesLike, /) -> list[int]: ...


def _load(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:  # not built: no C compiler when the package was installed
        return None


#: ``remote_storage._xor`` (the XOR chunk codec), or None when it is not built.
xor = cast(XorCodec | None, _load("remote_storage._xor"))
#: ``remote_storage.protocol.wire._wire`` (remote-read records and frames), or None.
wire = cast(WireCodec | None, _load("remote_storage.protocol.wire._wire"))
#: ``remote_storage.protocol.wire._v1scan`` (the remote-write 1.0 scanner), or None.
v1scan = cast(V1Scanner | None, _load("remote_storage.protocol.wire._v1scan"))

#: ``remote_storage.backends._memory_head`` (the memory backend's batch append), or None.
memory_head = cast(MemoryHead | None, _load("remote_storage.backends._memory_head"))

#: ``remote_storage.backends._sql_head`` (SQL functions for SQLite's sample rows), or None. It
#: needs SQLite's headers to build, so :data:`IMPLEMENTATION` does not wait for it.
sql_head = cast(SqlHead | None, _load("remote_storage.backends._sql_head"))
#: ``remote_storage.backends._sql_index`` (the SQLite series index's varint lists), or None; it
#: needs SQLite's headers too.
sql_index = cast(SqlIndex | None, _load("remote_storage.backends._sql_index"))

#: Whether every extension is built (whatever :data:`IMPLEMENTATION` says).
built: Final = xor is not None and wire is not None and v1scan is not None and memory_head is not None

#: ``"c"`` or ``"python"``: the implementation every module with a C twin uses.
IMPLEMENTATION: Final[Literal["c", "python"]] = (
    "c" if built and os.environ.get(ENVIRONMENT_SWITCH) != "1" else "python"
)
