"""Service settings: command-line flags, ``REMOTE_STORAGE_*`` environment variables, defaults.

Every setting has one flag and one environment variable (the flag wins).
:class:`Settings` validates itself when constructed, so a bad value fails at
start with a message naming the flag, never in the middle of a request.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from remote_storage.protocol.validation import NameScheme
from remote_storage.units import parse_duration, parse_size

__all__ = ["ConfigError", "Settings", "add_arguments", "parse_duration", "parse_size"]

ENV_PREFIX = "REMOTE_STORAGE_"


class ConfigError(ValueError):
    """A setting has an unusable value; the message names the flag to fix."""


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9201"``, ``"[::1]:9201"`` or ``":9201"`` (all interfaces) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"invalid listen address {text!r}: use HOST:PORT, e.g. 127.0.0.1:9201")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port} in {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, port


@dataclass(frozen=True)
class Settings:
    """Validated settings of ``remote-storage serve``."""

    listen: str = "127.0.0.1:9201"
    storage: str = "sqlite:///data/remote-storage.db"
    retention: float = 0.0
    max_request_bytes: int = 32 * 1024 * 1024
    read_sample_limit: int = 50_000_000
    read_timeout: float = 60.0
    read_max_bytes_in_frame: int = 1_048_576
    tenant_header: str = "X-Scope-OrgID"
    default_tenant: str = "default"
    label_names: NameScheme = NameScheme.UTF8
    log_level: str = "info"
    workers: int = 0
    # Back-pressure and connection hygiene (see remote_storage/backpressure.py, connections.py).
    max_inflight_write_bytes: int = 64 * 1024 * 1024
    max_inflight_reads: int = 8
    read_request_sample_limit: int = 50_000_000
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 75.0
    max_connections: int = 0

    def __post_init__(self) -> None:
        try:
            parse_listen(self.listen)
        except ValueError as exc:
            raise ConfigError(f"--listen: {exc}") from None
        if "://" not in self.storage:
            raise ConfigError(
                f"--storage: {self.storage!r} is not a URL; use e.g. memory:// or sqlite:///path/to.db"
            )
        if self.max_request_bytes < 1024:
            raise ConfigError(f"--max-request-bytes: {self.max_request_bytes} is below 1024 bytes")
        if self.retention < 0:
            raise ConfigError("--retention: must be 0 (keep everything) or positive")
        if self.read_sample_limit < 0:
            raise ConfigError("--read-sample-limit: must be 0 (no limit) or positive")
        if self.read_max_bytes_in_frame < 1024:
            raise ConfigError("--read-max-bytes-in-frame: must be at least 1024")
        if self.read_timeout <= 0:
            raise ConfigError("--read-timeout: must be positive")
        if not re.fullmatch(r"[A-Za-z0-9-]+", self.tenant_header):
            raise ConfigError(f"--tenant-header: {self.tenant_header!r} is not an HTTP header name")
        if not self.default_tenant:
            raise ConfigError("--default-tenant: must not be empty")
        if self.workers < 0:
            raise ConfigError("--workers: must be 0 (one per core where the backend allows) or positive")
        self._check_pressure_settings()
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level: {self.log_level!r} is not one of debug, info, warning, error")

    def _check_pressure_settings(self) -> None:
        if self.max_inflight_write_bytes < 0:
            raise ConfigError("--max-inflight-write-bytes: must be 0 (no bound) or positive")
        if self.max_inflight_reads < 0:
            raise ConfigError("--max-inflight-reads: must be 0 (no bound) or positive")
        if self.read_request_sample_limit < 0:
            raise ConfigError("--read-request-sample-limit: must be 0 (no limit) or positive")
        for flag, value in (
            ("--header-timeout", self.header_timeout),
            ("--body-timeout", self.body_timeout),
            ("--idle-timeout", self.idle_timeout),
        ):
            if value <= 0:
                raise ConfigError(f"{flag}: must be positive")
        if self.max_connections < 0:
            raise ConfigError("--max-connections: must be 0 (from the open-file limit) or positive")

    @property
    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


# flag -> (field, parser, help)
_OPTIONS: dict[str, tuple[str, Any, str]] = {
    "--listen": ("listen", str, "HOST:PORT to listen on"),
    "--storage": (
        "storage",
        str,
        "storage backend URL: sqlite:///PATH.db, postgresql://USER:PASSWORD@HOST/DB or memory://",
    ),
    "--retention": (
        "retention",
        parse_duration,
        "delete samples older than this (e.g. 15d); 0 keeps everything",
    ),
    "--max-request-bytes": (
        "max_request_bytes",
        parse_size,
        "largest request body, compressed or decompressed (e.g. 32MiB); larger gets 413",
    ),
    "--read-sample-limit": (
        "read_sample_limit",
        int,
        "most samples one remote-read query may return, counted while the answer is built (0: no limit)",
    ),
    "--read-request-sample-limit": (
        "read_request_sample_limit",
        int,
        "most samples all queries of one SAMPLES-mode remote-read request may return together (0: no limit)",
    ),
    "--read-timeout": ("read_timeout", parse_duration, "time limit of one remote-read request (e.g. 60s)"),
    "--read-max-bytes-in-frame": (
        "read_max_bytes_in_frame",
        parse_size,
        "frame size budget of streamed (STREAMED_XOR_CHUNKS) remote-read responses",
    ),
    "--tenant-header": ("tenant_header", str, "HTTP header naming the tenant of a request"),
    "--default-tenant": ("default_tenant", str, "tenant of requests without the tenant header"),
    "--label-names": (
        "label_names",
        NameScheme,
        "name validation: utf8 (any UTF-8, as Prometheus 3) or legacy ([a-zA-Z_][a-zA-Z0-9_]*)",
    ),
    "--log-level": ("log_level", str, "debug, info, warning or error"),
    "--workers": (
        "workers",
        int,
        "server processes sharing the port; 0: one per core for SQL backends, 1 for memory://",
    ),
    "--max-inflight-write-bytes": (
        "max_inflight_write_bytes",
        parse_size,
        "bytes of write bodies (compressed plus decompressed) handled at once; more gets 429 (0: no bound)",
    ),
    "--max-inflight-reads": (
        "max_inflight_reads",
        int,
        "remote-read requests served at once; more get 429 (0: no bound)",
    ),
    "--header-timeout": (
        "header_timeout",
        parse_duration,
        "time a connection has to send a request's headers; slower connections are closed",
    ),
    "--body-timeout": (
        "body_timeout",
        parse_duration,
        "time a request has to send its body once the headers are in; slower requests get 408",
    ),
    "--idle-timeout": (
        "idle_timeout",
        parse_duration,
        "time an idle keep-alive connection is kept open between requests",
    ),
    "--max-connections": (
        "max_connections",
        int,
        "open client connections per process (0: from the open-file limit, see README)",
    ),
}


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every settings flag to ``parser``; defaults are applied by :func:`settings_from`."""
    defaults = Settings()
    for flag, (field_name, _, help_text) in _OPTIONS.items():
        default = getattr(defaults, field_name)
        shown = default.value if isinstance(default, NameScheme) else default
        parser.add_argument(
            flag,
            dest=field_name,
            default=None,
            metavar=field_name.upper(),
            help=f"{help_text} [env {env_name(flag)}; default {shown}]",
        )


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed flags, then environment variables, then defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for flag, (field_name, parse, _) in _OPTIONS.items():
        raw = getattr(args, field_name, None)
        source = flag
        if raw is None:
            raw = environ.get(env_name(flag))
            source = env_name(flag)
        if raw is None:
            continue
        try:
            values[field_name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    return Settings(**values)
