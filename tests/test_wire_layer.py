"""The wire layer is the only code that knows protobuf tags; the native loader alone imports the C code.

The source checks grep the tree, so the structure cannot drift back: a tag
declared outside ``remote_storage/protocol/wire/`` (and the generated ``pb``
modules), or a module that imports a C extension or reads the pure-Python
switch itself, fails here with the file and line. The last test runs the
whole service on the pure-Python code.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remote_storage import native
from remote_storage.matchers import Matcher, MatchType
from remote_storage.protocol.negotiation import ResponseType
from remote_storage.protocol.streamed import decode_frames
from remote_storage.storage import float_bits
from tests.support.wire import READ_HEADERS, V1_HEADERS, read_body, read_results, series, v1_body

ROOT = Path(__file__).resolve().parent.parent
WIRE = Path("remote_storage/protocol/wire")
GENERATED = Path("remote_storage/protocol/pb")

#: Every byte that can start a field of a message with fields 1 to 15: the field
#: number shifted by 3, or'ed with a wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
TAG_BYTES = {(field << 3) | wire_type for field in range(1, 16) for wire_type in (0, 1, 2, 5)}
_HEX = r"\\x([0-9a-fA-F]{2})"
#: How tags are declared by hand, each form found in the tree before the wire layer:
PATTERNS = {
    # a bytes literal that starts with a tag byte: b"\x0a", b"\x12\x10\x09", b"\x0a\xff... text"
    "bytes literal starting with a tag": re.compile(r"""\bb(["'])""" + _HEX),
    # an integer constant, Python or C: _LABEL = 0x0A, #define TAG_SAMPLES 0x12
    "integer constant with a tag's value": re.compile(
        r"^\s*(?:#define\s+\w+\s+|[A-Za-z_]\w*\s*(?::\s*\w+\s*)?=\s*)0x([0-9a-fA-F]{2})\b"
    ),
    # a tag computed from a field number: (1 << 3) | 2, field << 3
    "field number shifted by 3": re.compile(r"<<\s*3\b(?!\d)"),
    # a name that says it holds a tag: _TIMESTAMP_TAG = ..., #define TAG_LABELS ...
    "name declaring a tag": re.compile(r"\b\w*_TAGS?\b\s*(?::[^=]*)?=(?!=)|(?:^|\s)#define\s+TAG_\w+"),
}


def declared_tag(code: str) -> str | None:
    """The form of hand-written protobuf tag on a line of code, or None."""
    for form, pattern in PATTERNS.items():
        match = pattern.search(code)
        if match is None:
            continue
        value = match.groups()[-1] if match.groups() else None
        if value is None or int(value, 16) in TAG_BYTES:  # 0xff separators, masks: not tags
            return form
    return None


def sources(root: Path) -> list[Path]:
    """The .py and .c files of remote_storage/ and backends/ outside the wire layer and generated code."""
    found = []
    for top in ("remote_storage", "backends"):
        for path in sorted((root / top).rglob("*")):
            relative = path.relative_to(root)
            if path.suffix not in (".py", ".c") or relative.is_relative_to(WIRE):
                continue
            if relative.is_relative_to(GENERATED):
                continue
            found.append(path)
    return found


def tag_declarations(root: Path) -> list[str]:
    """``path:line: form: text`` for every hand-written protobuf tag under ``root``."""
    hits = []
    for path in sources(root):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            form = declared_tag(line)
            if form is not None:
                hits.append(f"{path.relative_to(root)}:{number}: {form}: {line.strip()}")
    return hits


def test_no_protobuf_tag_outside_the_wire_layer() -> None:
    hits = tag_declarations(ROOT)
    assert not hits, "protobuf tags belong in remote_storage/protocol/wire/:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    "line",
    [  # lines of the tree before the wire layer, one per form
        '_RESULT = b"\\x0a"',
        'body = _string_field(b"\\x0a", parts[index]) + _string_field(b"\\x12", parts[index + 1])',
        '_QUERY_INDEX = b"\\x10"',
        "_TIMESERIES = 0x0A",
        "_VALUE = 0x09",
        '_SAMPLE_HEADER = b"\\x12\\x10\\x09"  # field 2 (samples), 16 bytes',
        'metadata = b"\\x08" + uvarint(int(metric.type)) + b"\\x18" + uvarint(ref(metric.help))',
        '_GARBAGE = b"\\x0a\\xff\\xff\\xff\\xff\\x0f not a protobuf message"',
        "#define TAG_CHUNK_DATA 0x22",
        "#define TAG_QUERY_INDEX 0x10",
        "tag = (1 << 3) | 2",
        "_TIMESTAMP_TAG: bytes = something()",
    ],
)
def test_the_tag_check_finds_every_form(line: str) -> None:
    assert declared_tag(line) is not None


@pytest.mark.parametrize(
    "line",
    ['LABEL_SEPARATOR = b"\\xff"', "_UNSET = 0xFF", "MIN_TIMESTAMP_MS = 1 << 35", "#define MAX 0xFFFF"],
)
def test_the_tag_check_leaves_other_bytes_alone(line: str) -> None:
    assert declared_tag(line) is None


_EXTENSION = r"\b_(?:xor|wire|v1scan|codec)\b"
#: An import of an extension: ``import x._xor``, ``from x import _wire``, ``import_module("x._v1scan")``.
EXTENSION_IMPORT = re.compile(
    rf"^\s*import\s+[\w.]*{_EXTENSION}|^\s*from\s+[\w.]*{_EXTENSION}|^\s*from\s+[\w.]+\s+import\s.*{_EXTENSION}"
    rf"|(?:import_module|__import__)\(\s*[\"'][\w.]*{_EXTENSION}"
)


def test_only_the_native_loader_imports_the_c_extensions() -> None:
    hits = []
    for top in ("remote_storage", "backends", "tests", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == ROOT / "remote_storage" / "native.py" or path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if EXTENSION_IMPORT.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "only remote_storage/native.py imports the C extensions:\n" + "\n".join(hits)


def test_only_the_native_loader_reads_the_switch() -> None:
    hits = []
    for path in sorted((ROOT / "remote_storage").rglob("*.py")) + sorted((ROOT / "backends").rglob("*.py")):
        if path.name != "native.py" and native.ENVIRONMENT_SWITCH in path.read_text():
            hits.append(str(path.relative_to(ROOT)))
    assert not hits, f"modules choosing their implementation themselves: {hits}"


def test_the_switch_gives_python_in_a_fresh_interpreter() -> None:
    code = (
        "from remote_storage import native, chunks; "
        "from remote_storage.protocol.wire import records, v1_scan; "
        "print(native.IMPLEMENTATION, chunks.encode_chunk.__name__, records.encode_labels.__name__,"
        " v1_scan.scan.__name__)"
    )
    env = {"REMOTE_STORAGE_PURE_PYTHON": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["python", "_py_encode_chunk", "_py_encode_labels", "_py_scan"]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def test_the_service_runs_on_pure_python(adapter: Callable[..., Any], tmp_path: Path) -> None:
    """Started with the switch, the server says so at start and writes and reads as ever."""
    service = adapter(f"sqlite:///{tmp_path / 'pure.db'}", env={"REMOTE_STORAGE_PURE_PYTHON": "1"})
    assert re.search(r"codec\W+python", service.process.log_text()), service.process.log_text()
    written = [series([1000, 2000, 3000], [1.0, float("nan"), -0.0], __name__="up", job="pure")]
    status, _ = post(service.write_url, v1_body(written), V1_HEADERS)
    assert status == 204
    matchers = [Matcher(MatchType.EQ, "job", "pure")]
    status, body = post(service.read_url, read_body((0, 10_000, matchers)), READ_HEADERS)
    assert status == 200
    [result] = read_results(body)
    [found] = result.series
    assert found.labels == written[0].labels
    assert list(found.timestamps) == [1000, 2000, 3000]
    assert [float_bits(v) for v in found.values] == [float_bits(v) for v in written[0].values]
    streamed_body = read_body((0, 10_000, matchers), accepted=(ResponseType.STREAMED_XOR_CHUNKS,))
    status, frames = post(service.read_url, streamed_body, READ_HEADERS)
    assert status == 200
    [message] = decode_frames(frames)
    assert [label.value for label in message.chunked_series[0].labels] == ["up", "pure"]


@pytest.mark.skipif(not native.built, reason="the C extensions are not built")
def test_without_the_switch_the_c_code_runs() -> None:
    code = "from remote_storage import native; print(native.IMPLEMENTATION)"
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert run.stdout.strip() == "c", run.stderr


def test_backends_import_nothing_from_the_protocol() -> None:
    """Backends speak storage terms: joined label bytes, not protobuf records."""
    hits = []
    for path in sorted((ROOT / "backends").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"^\s*(from|import)\s+remote_storage\.protocol\b", line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)
