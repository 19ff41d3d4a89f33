"""Log lines as text, JSON and logfmt; one line per exception unless debug; rate limiting; help defaults."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from remote_storage.config import Settings, add_arguments
from remote_storage.logs import LogFormat, RateLimiter, formatter
from remote_storage.units import format_duration, format_size


def record(
    message: str = "write refused", exc: BaseException | None = None, **fields: object
) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    made = logging.LogRecord("remote_storage.server", logging.INFO, __file__, 1, message, (), exc_info)
    if fields:
        made.fields = fields
    return made


def failure() -> BaseException:
    try:
        raise PermissionError("[Errno 13] Permission denied: '/data/x.db'\nsecond line")
    except PermissionError as exc:
        return exc


def test_text_lines_carry_fields_and_one_line_exceptions() -> None:
    line = formatter(LogFormat.TEXT, debug=False).format(record(status=400, reason="too_many_labels"))
    assert line.endswith("INFO remote_storage.server: write refused status=400 reason=too_many_labels")
    line = formatter(LogFormat.TEXT, debug=False, process="worker-1").format(record(exc=failure()))
    assert "\n" not in line
    assert "worker-1 remote_storage.server" in line
    assert line.endswith("(PermissionError: [Errno 13] Permission denied: '/data/x.db')")
    debug = formatter(LogFormat.TEXT, debug=True).format(record(exc=failure()))
    assert "Traceback (most recent call last)" in debug


def test_json_lines_are_objects_with_the_fields() -> None:
    line = formatter(LogFormat.JSON, debug=False).format(record(tenant="a b", size=12, exc=failure()))
    entry = json.loads(line)
    assert entry["level"] == "info"
    assert entry["logger"] == "remote_storage.server"
    assert entry["msg"] == "write refused"
    assert entry["tenant"] == "a b"
    assert entry["size"] == 12
    assert entry["error"].startswith("PermissionError")
    assert "traceback" not in entry
    assert "traceback" in json.loads(formatter(LogFormat.JSON, debug=True).format(record(exc=failure())))


def test_logfmt_quotes_what_needs_it() -> None:
    line = formatter(LogFormat.LOGFMT, debug=False).format(record('say "hi"', tenant="a b", plain="x"))
    assert ' level=info logger=remote_storage.server msg="say \\"hi\\"" tenant="a b" plain=x' in line
    assert line.startswith("ts=")


def test_rate_limiter_counts_what_it_held_back() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=2, window=10.0, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(5)] == [
        (True, 0),
        (True, 0),
        (False, 0),
        (False, 0),
        (False, 0),
    ]
    assert limiter.allow("b") == (True, 0)  # per key
    now[0] = 10.0
    assert limiter.allow("a") == (True, 3)  # the first line of the next window tells what was left out
    assert limiter.allow("a") == (True, 0)


@pytest.mark.parametrize(
    ("size", "text"), [(33554432, "32MiB"), (1048576, "1MiB"), (1536, "1536B"), (2048, "2KiB"), (0, "0")]
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60.0, "1m"), (3600.0, "1h"), (90.0, "1m30s"), (0.25, "250ms"), (0.0, "0"), (86400.0, "1d")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_help_shows_human_defaults_and_choices() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    for shown in (
        "default 32MiB",
        "default 1m",
        "default 1h",
        "default 10m",
        "{utf8,legacy}",
        "{text,json,logfmt}",
    ):
        assert shown in " ".join(text.split()), shown
    assert "default 33554432" not in text
    assert Settings().log_format is LogFormat.TEXT
