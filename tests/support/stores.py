"""Storage URLs of fresh stores of each shipped backend, for tests that run on all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["storage_url_for"]


def storage_url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh store of ``kind`` (memory, sqlite or postgresql) for one test."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'data.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
