"""``promtool check metrics`` (Debian package ``prometheus``) accepts what this library writes."""

from __future__ import annotations

import subprocess

import pytest

from remote_storage.instrument import Counter, Registry, generate_latest
from tests.instrument.zoo import every_type
from tests.support.system import ensure_debian_package


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_debian_package("prometheus", "promtool")


def check_metrics(promtool: str, text: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=text.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_metric_type_with_awkward_labels_passes(promtool: str) -> None:
    registry = Registry()
    every_type(registry)
    result = check_metrics(promtool, generate_latest(registry))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == result.stderr == ""


def test_promtool_would_notice_a_problem(promtool: str) -> None:
    """The check is not vacuous: a lint problem fails it."""
    registry = Registry()
    Counter("requests", "", registry=registry).inc()  # no help text
    result = check_metrics(promtool, generate_latest(registry))
    assert result.returncode != 0
    assert "no help text" in result.stdout + result.stderr
