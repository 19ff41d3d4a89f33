"""Service settings: command-line flags, ``REMOTE_STORAGE_*`` environment variables, defaults.

Every setting has one flag and one environment variable (the flag wins).
:class:`Settings` validates itself when constructed, so a bad value fails at
start with a message naming the flag, never in the middle of a request.
"""

from __future__ import annotations

import argparse
import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from remote_storage.address import parse_listen
from remote_storage.decode_process import DecoderMode
from remote_storage.logs import LogFormat
from remote_storage.protocol.limits import WriteLimits
from remote_storage.protocol.validation import NameScheme
from remote_storage.units import format_duration, format_size, parse_duration, parse_size

__all__ = ["ConfigError", "Settings", "add_arguments", "parse_duration", "parse_size"]

ENV_PREFIX = "REMOTE_STORAGE_"


class ConfigError(ValueError):
    """A setting has an unusable value; the message names the flag to fix."""


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
    log_format: LogFormat = LogFormat.TEXT
    workers: int = 0
    decoder: DecoderMode = DecoderMode.AUTO
    # write limits (0 turns one off); see remote_storage/protocol/limits.py
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_labels_per_series: int = 64
    max_series_per_request: int = 100_000
    max_samples_per_request: int = 1_000_000
    max_active_series: int = 1_000_000
    active_series_window: float = 3600.0
    #: None: follow --retention
    max_sample_age: float | None = None
    future_grace_period: float = 600.0
    # Authentication and TLS (remote_storage/auth.py, remote_storage/tls.py); empty: off.
    auth_config: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
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
        for name in (
            "max_label_name_length",
            "max_label_value_length",
            "max_labels_per_series",
            "max_series_per_request",
            "max_samples_per_request",
            "max_active_series",
            "future_grace_period",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')}: must be 0 (no limit) or positive")
        if 0 < self.max_label_name_length < len("__name__"):
            raise ConfigError(
                "--max-label-name-length: must be 0 (no limit) or at least 8, the length of __name__"
            )
        if self.max_sample_age is not None and self.max_sample_age < 0:
            raise ConfigError("--max-sample-age: must be 0 (no limit) or positive")
        if self.active_series_window <= 0:
            raise ConfigError("--active-series-window: must be positive")
        self._check_pressure_settings()
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"--log-level: {self.log_level!r} is not one of debug, info, warning, error")
        # The files themselves are read and checked at start by auth.load_auth and tls.server_ssl_context.
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            missing = "--tls-key-file" if self.tls_cert_file else "--tls-cert-file"
            raise ConfigError(f"{missing}: HTTPS needs both --tls-cert-file and --tls-key-file; set both")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ConfigError(
                "--tls-client-ca-file: client certificates need HTTPS; set --tls-cert-file and --tls-key-file"
            )

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

    @property
    def write_limits(self) -> WriteLimits:
        """The per-request write limits; the sample age follows ``--retention`` unless set."""
        age = self.retention if self.max_sample_age is None else self.max_sample_age
        return WriteLimits(
            max_label_name_length=self.max_label_name_length,
            max_label_value_length=self.max_label_value_length,
            max_labels_per_series=self.max_labels_per_series,
            max_series_per_request=self.max_series_per_request,
            max_samples_per_request=self.max_samples_per_request,
            max_sample_age_ms=round(age * 1000),
            future_grace_ms=round(self.future_grace_period * 1000),
        )


LOG_LEVELS = ("debug", "info", "warning", "error")


class _Choice:
    """Parses one of a fixed set of words (an enum's values, or strings), naming them all when refused."""

    def __init__(self, choices: Any) -> None:
        self.choices = choices
        self.words = [c.value if isinstance(c, enum.Enum) else c for c in choices]

    def __call__(self, text: str) -> Any:
        word = text.strip().lower()
        for choice, value in zip(self.choices, self.words, strict=True):
            if word == value:
                return choice
        raise ValueError(f"{text!r} is not one of {', '.join(self.words)}")


def _choice(choices: Any) -> _Choice:
    return _Choice(choices)


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
        _choice(NameScheme),
        "name validation: utf8 (any UTF-8, as Prometheus 3) or legacy ([a-zA-Z_][a-zA-Z0-9_]*)",
    ),
    "--log-level": ("log_level", _choice(LOG_LEVELS), "least important messages logged"),
    "--log-format": ("log_format", _choice(LogFormat), "one line per event as text, json or logfmt"),
    "--workers": (
        "workers",
        int,
        "server processes sharing the port; 0: one per core for PostgreSQL, 1 for SQLite and memory://",
    ),
    "--decoder": (
        "decoder",
        _choice(DecoderMode),
        "where remote-write bodies are decoded: process (a child process, a second core), inline, "
        "or auto (process with 2+ cores and one server process)",
    ),
    "--max-label-name-length": (
        "max_label_name_length",
        int,
        "longest label name in bytes; longer gets 400 (0: no limit)",
    ),
    "--max-label-value-length": (
        "max_label_value_length",
        int,
        "longest label value (the metric name included) in bytes; longer gets 400 (0: no limit)",
    ),
    "--max-labels-per-series": (
        "max_labels_per_series",
        int,
        "most labels one series may have; more gets 400 (0: no limit)",
    ),
    "--max-series-per-request": (
        "max_series_per_request",
        int,
        "most series one write request may hold; more gets 400 (0: no limit)",
    ),
    "--max-samples-per-request": (
        "max_samples_per_request",
        int,
        "most samples and histograms one write request may hold; more gets 400 (0: no limit)",
    ),
    "--max-active-series": (
        "max_active_series",
        int,
        "most active series per tenant (counted by this process); a write adding more gets 400 (0: no limit)",
    ),
    "--active-series-window": (
        "active_series_window",
        parse_duration,
        "a series stops counting as active this long after its last sample (at most)",
    ),
    "--max-sample-age": (
        "max_sample_age",
        parse_duration,
        "samples older than this get 400 (default: --retention; 0: any age)",
    ),
    "--future-grace-period": (
        "future_grace_period",
        parse_duration,
        "samples further than this ahead of the server's clock get 400 (0: no limit)",
    ),
    "--auth-config": (
        "auth_config",
        str,
        "TOML file of users (bcrypt password hashes) and bearer tokens (sha256); unset: no authentication",
    ),
    "--tls-cert-file": ("tls_cert_file", str, "PEM certificate (chain) to serve HTTPS with; unset: HTTP"),
    "--tls-key-file": ("tls_key_file", str, "PEM private key of --tls-cert-file"),
    "--tls-client-ca-file": (
        "tls_client_ca_file",
        str,
        "PEM CA certificates; when set, clients must present a certificate signed by one of them",
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


def _shown(default: Any, parse: Any) -> str:
    """A default as an operator would write it: ``32MiB``, ``60s``, ``utf8``."""
    if default is None:
        return "see above"
    if isinstance(default, enum.Enum):
        return str(default.value)
    if default == "":
        return "unset"
    if parse is parse_size:
        return format_size(default)
    if parse is parse_duration:
        return format_duration(default)
    if isinstance(default, int) and not isinstance(default, bool) and default >= 10_000:
        return f"{default:_}"
    return str(default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every settings flag to ``parser``; defaults are applied by :func:`settings_from`."""
    defaults = Settings()
    for flag, (field_name, parse, help_text) in _OPTIONS.items():
        shown = _shown(getattr(defaults, field_name), parse)
        metavar = "{" + ",".join(parse.words) + "}" if isinstance(parse, _Choice) else field_name.upper()
        parser.add_argument(
            flag,
            dest=field_name,
            default=None,
            metavar=metavar,
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
