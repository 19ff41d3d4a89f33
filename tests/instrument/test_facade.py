"""The public surface of remote_storage.instrument."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import remote_storage.instrument as instrument

MODULES = sorted(
    info.name for info in pkgutil.iter_modules(instrument.__path__, prefix=f"{instrument.__name__}.")
)
MAX_MODULE_LINES = 600


def test_all_names_are_exported() -> None:
    assert len(set(instrument.__all__)) == len(instrument.__all__)
    for name in instrument.__all__:
        assert getattr(instrument, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = instrument.Nope  # type: ignore[attr-defined]


def test_names_the_service_uses() -> None:
    for name in ("Counter", "Gauge", "Histogram", "Registry", "generate_latest", "choose_encoder"):
        assert name in instrument.__all__


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, remote_storage.instrument as i; i.Pusher; i.MetricsExporter; "
        "assert 'prometheus_client' not in sys.modules"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_defining_metrics_does_not_import_aiohttp_or_protobuf() -> None:
    code = (
        "import sys, remote_storage.instrument as i; i.Counter('c', 'C.').inc(); i.generate_latest(); "
        "heavy = [m for m in ('aiohttp', 'google.protobuf', 'snappy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", MODULES)
def test_module_is_under_the_size_limit(module: str) -> None:
    path = Path(importlib.import_module(module).__file__ or "")
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("name", [instrument.__name__, *MODULES])
def test_docstring_examples_run(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
