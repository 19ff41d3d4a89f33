"""Every module imports on its own in a fresh interpreter (no import cycles), and layers point one way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ((ROOT / "remote_storage", "remote_storage"), (ROOT / "backends", "remote_storage.backends"))


def modules() -> dict[str, Path]:
    found = {}
    for base, package in PACKAGES:
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(base)
            if relative.parts[0] == "backends" or "pb" in relative.parts[:-1] or path.name == "__main__.py":
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


@pytest.mark.parametrize("module", sorted(modules()))
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_nothing_below_the_server_imports_it() -> None:
    """cli -> launch -> server -> protocol -> storage types; backends -> storage types."""
    for module, path in modules().items():
        if module in ("remote_storage.server", "remote_storage.launch", "remote_storage.cli"):
            continue
        source = path.read_text()
        assert "remote_storage.server" not in source, module
        assert "remote_storage.cli" not in source, module
        if module.startswith(("remote_storage.backends", "remote_storage.protocol")):
            assert "remote_storage.telemetry" not in source, module
