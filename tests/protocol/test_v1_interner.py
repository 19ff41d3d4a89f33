"""The interner of remote-write 1.0 label sets: C and Python give the same numbers and rows."""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remote_storage import native
from remote_storage.protocol import write
from remote_storage.protocol.wire import v1_scan
from remote_storage.protocol.wire.v1_scan import (
    Interner,
    NumberedColumns,
    _CInterner,
    _py_columns,
    _PyInterner,
)
from tests.protocol.test_v1_scan import damaged, odd_bodies, write_requests
from tests.support.wire import series

needs_c = pytest.mark.skipif(native.v1scan is None, reason="the C scanner is not built")


def c_interner() -> Interner:
    assert native.v1scan is not None
    return _CInterner(native.v1scan.Interner())


def outcome(found: NumberedColumns | None) -> tuple[object, ...] | None:
    if found is None:
        return None
    return (found.numbers, found.missing, found.timestamps, found.values, found.metadata, len(found))


def body(*names: str) -> bytes:
    return write.encode_v1([series([n], [n / 2], __name__="m", i=name) for n, name in enumerate(names)])


@pytest.fixture(params=["python", pytest.param("c", marks=needs_c)])
def interner(request: pytest.FixtureRequest) -> Interner:
    return _PyInterner() if request.param == "python" else c_interner()


def test_known_keys_get_their_numbers_and_the_rest_are_listed(interner: Interner) -> None:
    first = interner.columns(body("a", "b", "a"))
    assert first is not None and len(first) == 3
    assert first.numbers == bytes(24)
    keys = _py_columns(body("a", "b", "a"))
    assert keys is not None
    assert first.missing == [(0, keys.keys[0]), (1, keys.keys[1]), (2, keys.keys[0])]
    interner.add(keys.keys[0], 7)
    second = interner.columns(body("a", "b", "a"))
    assert second is not None
    assert list(memoryview(second.numbers).cast("q")) == [7, 0, 7]
    assert second.missing == [(1, keys.keys[1])]
    assert (second.timestamps, second.values) == (keys.timestamps, keys.values)
    interner.add(keys.keys[0], 9)  # a new number replaces the old one
    assert len(interner) == 1
    third = interner.columns(body("a"))
    assert third is not None and list(memoryview(third.numbers).cast("q")) == [9]


def test_many_keys_survive_growth_and_clear_forgets_them(interner: Interner) -> None:
    names = [f"series-{n}" for n in range(5_000)]
    found = interner.columns(body(*names))
    assert found is not None and len(found.missing) == len(names)
    for row, key in found.missing:
        interner.add(key, row + 1)
    assert len(interner) == len(names)
    again = interner.columns(body(*names))
    assert again is not None and not again.missing
    assert list(memoryview(again.numbers).cast("q")) == list(range(1, len(names) + 1))
    interner.clear()
    assert len(interner) == 0
    cleared = interner.columns(body(*names[:3]))
    assert cleared is not None and len(cleared.missing) == 3


def test_numbers_are_positive(interner: Interner) -> None:
    with pytest.raises(ValueError, match="positive"):
        interner.add(b"key", 0)


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(write_requests(), odd_bodies(), damaged(write_requests())), min_size=1, max_size=4))
def test_c_and_python_interners_agree(bodies: list[bytes]) -> None:
    c, python = c_interner(), _PyInterner()
    number = 1
    for item in bodies:
        c_found, py_found = c.columns(item), python.columns(item)
        assert outcome(c_found) == outcome(py_found)
        for _, key in py_found.missing if py_found is not None else ():
            c.add(key, number)
            python.add(key, number)
            number += 1
        assert len(c) == len(python)


@needs_c
def test_the_c_interner_leaks_nothing() -> None:
    table = c_interner()
    items = [body(*(f"s{n}" for n in range(50))), b"\x0a\x03bad", body("x")[:-2]]
    for _ in range(20):
        for item in items:
            table.columns(item)

    def counts(found: NumberedColumns | None) -> list[int]:
        assert found is not None
        objects = [
            found.numbers,
            found.missing,
            *found.missing,
            found.timestamps,
            found.values,
            found.metadata,
        ]
        return [sys.getrefcount(item) for item in objects]

    assert counts(table.columns(items[0])) == counts(_PyInterner().columns(items[0]))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for round_ in range(200):
            for item in items:
                table.columns(item)
            table.add(f"key-{round_ % 10}".encode(), round_ + 1)
        gc.collect()
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024


def test_the_implementation_follows_native() -> None:
    made = v1_scan.new_interner()
    expected = _CInterner if native.IMPLEMENTATION == "c" else _PyInterner
    assert type(made) is expected
