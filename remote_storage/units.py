"""Sizes and durations as operators write them: ``32MiB``, ``15d``, ``1h30m``."""

from __future__ import annotations

import re

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_size(text: str) -> int:
    """``"32MiB"`` -> 33554432; plain numbers are bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}: use bytes or a unit such as 512KiB, 32MiB, 1GB")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_duration(text: str) -> float:
    """``"90s"``, ``"1m"``, ``"1h30m"``, ``"250ms"`` -> seconds; a plain number is seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}: use a number of seconds or units such as 30s, 5m, 1h")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def format_size(size: int) -> str:
    """33554432 -> ``"32MiB"``: the largest binary unit that divides the size, as operators write it."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B" if size else "0"


def format_duration(seconds: float) -> str:
    """3600.0 -> ``"1h"``, 90.0 -> ``"1m30s"``, 0.25 -> ``"250ms"``, 0 -> ``"0"``."""
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole = round(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    parts = []
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, factor)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
