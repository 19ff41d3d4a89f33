"""Parsing protobuf bodies into generated messages, with errors that say what failed."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from remote_storage.errors import MalformedBody

__all__ = ["parse"]


def parse(message: Any, payload: bytes) -> None:
    """Parse ``payload`` into ``message`` in place; raise MalformedBody (400) on bad input."""
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        name = message.DESCRIPTOR.full_name
        raise MalformedBody(f"invalid {name} protobuf", str(exc) or "cannot parse") from None
