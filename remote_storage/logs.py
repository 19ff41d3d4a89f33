"""How the service logs: one line per event, as text, JSON or logfmt, tracebacks only at debug.

``--log-format`` picks the line format:

* ``text``: ``2026-12-05 08:00:00,123 INFO remote_storage: message key=value``
* ``json``: one object per line: ``{"ts": ..., "level": ..., "logger": ..., "msg": ..., ...}``
* ``logfmt``: ``ts=... level=info logger=remote_storage msg="message" key=value``

Fields given with ``extra={"fields": {...}}`` become keys of their own in
JSON and logfmt, and ``key=value`` pairs after the text message. An
exception logged at a level above debug is one line ending with its type
and message; its traceback is written only when the level is ``debug``, so
an operator sees the cause, and a developer can ask for the rest.

:class:`RateLimiter` keeps lines about repeated events (every rejected
request, every failed accept) from flooding a log: each key may log a few
lines per window, and the first line after a quiet window says how many
were left out.
"""

from __future__ import annotations

import enum
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LogFormat", "RateLimiter", "configure", "formatter"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"
    LOGFMT = "logfmt"


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    found = getattr(record, "fields", None)
    return found if isinstance(found, Mapping) else {}


def _exception_line(record: logging.LogRecord) -> str:
    if not record.exc_info or record.exc_info[1] is None:
        return ""
    exc = record.exc_info[1]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _OneLine(logging.Formatter):
    """Base: the message, the fields, and the exception as one line unless ``debug``."""

    def __init__(self, debug: bool, prefix: str = "") -> None:
        super().__init__(TEXT_FORMAT)
        self.debug = debug
        self.prefix = prefix

    def traceback(self, record: logging.LogRecord) -> str:
        if self.debug and record.exc_info:
            return self.formatException(record.exc_info)
        return ""


class _Text(_OneLine):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())
        line = f"{self.formatTime(record)} {record.levelname} {self.prefix}{record.name}: {message}"
        if fields:
            line += " " + fields
        failure = _exception_line(record)
        if failure:
            line += f" ({failure})"
        extra = self.traceback(record)
        return line + ("\n" + extra if extra else "")


class _Structured(_OneLine):
    """JSON and logfmt: the same keys, in the same order, written two ways."""

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if self.prefix:
            entry["process"] = self.prefix.strip()
        entry["msg"] = record.getMessage()
        entry.update(_fields(record))
        failure = _exception_line(record)
        if failure:
            entry["error"] = failure
        extra = self.traceback(record)
        if extra:
            entry["traceback"] = extra
        return entry


class _Json(_Structured):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.entry(record), default=str, ensure_ascii=False)


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Logfmt(_Structured):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in self.entry(record).items())


def formatter(log_format: LogFormat, debug: bool, process: str = "") -> logging.Formatter:
    """The formatter of a format; ``process`` (e.g. ``worker-1``) names the process in each line."""
    prefix = f"{process} " if process else ""
    kinds: dict[LogFormat, type[_OneLine]] = {
        LogFormat.TEXT: _Text,
        LogFormat.JSON: _Json,
        LogFormat.LOGFMT: _Logfmt,
    }
    return kinds[log_format](debug, prefix)


def configure(level: str, log_format: LogFormat = LogFormat.TEXT, process: str = "") -> None:
    """Send the root logger's records to stderr, one line each in ``log_format``, from ``level`` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, level.lower() == "debug", process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class RateLimiter:
    """Lets each key through ``burst`` times per ``window`` seconds; counts what it holds back.

    >>> limiter = RateLimiter(burst=2, window=60.0, clock=lambda: 0.0)
    >>> [limiter.allow("x") for _ in range(3)]
    [(True, 0), (True, 0), (False, 0)]
    """

    def __init__(
        self, burst: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.window = window
        self._clock = clock
        self._state: dict[str, tuple[float, int, int]] = {}  # key -> (window start, allowed, suppressed)

    def allow(self, key: str) -> tuple[bool, int]:
        """Whether to log now, and how many lines of ``key`` were held back before this one."""
        now = self._clock()
        start, allowed, suppressed = self._state.get(key, (now, 0, 0))
        if now - start >= self.window:
            start, allowed = now, 0
        if allowed < self.burst:
            self._state[key] = (start, allowed + 1, 0)
            if len(self._state) > 1000:  # keys are reasons and classes of errors: few; stay bounded anyway
                self._state.pop(next(iter(self._state)))
            return True, suppressed
        self._state[key] = (start, allowed, suppressed + 1)
        return False, 0
