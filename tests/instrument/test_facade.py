"""The public surface of remote_storage.instrument."""

from __future__ import annotations

import doctest
import subprocess
import sys
from types import ModuleType

import pytest

import remote_storage.instrument as instrument
from remote_storage.instrument import exposition, metrics, registry


def test_all_names_are_exported() -> None:
    assert len(set(instrument.__all__)) == len(instrument.__all__)
    for name in instrument.__all__:
        assert getattr(instrument, name) is not None


def test_names_the_service_uses() -> None:
    for name in ("Counter", "Gauge", "Histogram", "Registry", "generate_latest", "choose_encoder"):
        assert name in instrument.__all__


def test_does_not_import_prometheus_client() -> None:
    code = "import sys, remote_storage.instrument; assert 'prometheus_client' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", [instrument, metrics, registry, exposition], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
