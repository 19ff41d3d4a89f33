"""Every module imports on its own in a fresh interpreter (no import cycles), and layers point one way."""

from __future__ import annotations

import ast
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


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement of ``source`` names (at any depth: functions too).

    Read from the syntax tree, so a docstring or comment that mentions a
    module is no import. ``from a import b`` names ``a`` and ``a.b`` (``b``
    may be a submodule); relative imports are resolved against ``module``.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


def imports(module: str, path: Path) -> set[str]:
    return imported_modules(path.read_text(), module, path.name == "__init__.py")


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_nothing_below_the_server_imports_it() -> None:
    """cli -> launch -> server -> protocol -> storage types; backends -> storage types."""
    for module, path in modules().items():
        if module in ("remote_storage.server", "remote_storage.launch", "remote_storage.cli"):
            continue
        names = imports(module, path)
        assert not any(within(n, "remote_storage.server", "remote_storage.cli") for n in names), module
        if within(module, "remote_storage.backends", "remote_storage.protocol"):
            assert not any(within(n, "remote_storage.telemetry") for n in names), module


#: Layers that never reach the wire format or the service's configuration.
STORAGE_SIDE = ("remote_storage.backends", "remote_storage.instrument")
FORBIDDEN = ("remote_storage.protocol", "remote_storage.config")
#: (importer, imported module or package) pairs allowed through.
ALLOWED = {
    # The pusher sends a registry as remote-write bodies: it encodes them with the protocol layer.
    ("remote_storage.instrument.pusher", "remote_storage.protocol"),
    # TEMPORARY, remove at merge: sql.py imports protocol.read.encode_joined_labels until the wire
    # branch moves joined label bytes to the storage level.
    ("remote_storage.backends.sql", "remote_storage.protocol.read"),
}


def reached_layers(module: str, known: dict[str, Path]) -> dict[str, list[str]]:
    """Each forbidden layer ``module`` reaches, with the chain of imports that gets there.

    Imports into other modules of the package are followed (a helper that
    imports the protocol brings it along), except the allowed pairs.
    """
    reached: dict[str, list[str]] = {}
    chains = {module: [module]}
    todo = [module]
    while todo:
        current = todo.pop()
        for name in sorted(imports(current, known[current])):
            layer = next((f for f in FORBIDDEN if within(name, f)), None)
            if layer is not None:
                if not any(current == importer and within(name, allowed) for importer, allowed in ALLOWED):
                    reached.setdefault(layer, [*chains[current], name])
            elif name in known and name not in chains:
                chains[name] = [*chains[current], name]
                todo.append(name)
    return reached


@pytest.mark.parametrize("module", sorted(m for m in modules() if within(m, *STORAGE_SIDE)))
def test_backends_and_instrument_never_import_protocol_or_config(module: str) -> None:
    """DESIGN.md's layering: backends speak storage terms, instrument/ stands alone (but the pusher)."""
    assert reached_layers(module, modules()) == {}


def test_the_import_reader_sees_statements_not_text() -> None:
    source = '''"""Mentions remote_storage.protocol and remote_storage.config in prose."""
# import remote_storage.config
def f() -> None:
    from ..protocol import read
'''
    names = imported_modules(source, "remote_storage.backends.example")
    assert names == {"remote_storage.protocol", "remote_storage.protocol.read"}
    assert imported_modules("from . import x", "remote_storage.backends", is_package=True) == {
        "remote_storage.backends",
        "remote_storage.backends.x",
    }


def test_the_layer_check_follows_helpers(tmp_path: Path) -> None:
    """A backend that reaches the protocol through a helper module is caught."""
    helper, backend = tmp_path / "helper.py", tmp_path / "backend.py"
    helper.write_text("from remote_storage.protocol import snappy\n")
    backend.write_text("from remote_storage import helper\n")
    known = {"remote_storage.helper": helper, "remote_storage.backends.fake": backend}
    assert reached_layers("remote_storage.backends.fake", known) == {
        "remote_storage.protocol": [
            "remote_storage.backends.fake",
            "remote_storage.helper",
            "remote_storage.protocol",
        ]
    }
