"""docs/instrument.md documents every public name, and its code blocks are valid Python."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import remote_storage.instrument as instrument

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "instrument.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOCS, re.S)


@pytest.mark.parametrize("name", instrument.__all__)
def test_public_name_is_documented(name: str) -> None:
    assert re.search(rf"\b{re.escape(name)}\b", DOCS), f"{name} is not mentioned in docs/instrument.md"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_code_blocks_compile(index: int) -> None:
    source = BLOCKS[index]
    if "await " in source:  # fragments of coroutines
        source = "async def _():\n" + "\n".join("    " + line for line in source.splitlines())
    compile(source, f"docs/instrument.md block {index}", "exec")


def test_benchmark_command_is_documented() -> None:
    assert "python benchmarks/instrument.py --runs 3" in DOCS
