from __future__ import annotations

import argparse

import pytest

from remote_storage.address import parse_listen
from remote_storage.config import (
    ConfigError,
    Settings,
    add_arguments,
    parse_duration,
    parse_size,
    settings_from,
)
from remote_storage.protocol.validation import NameScheme


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from(parser.parse_args(argv), env or {})


def test_defaults() -> None:
    settings = parse([])
    assert settings == Settings()
    assert settings.address == ("127.0.0.1", 9201)
    assert settings.max_request_bytes == 32 * 1024 * 1024


def test_flags_beat_environment_which_beats_defaults() -> None:
    env = {"REMOTE_STORAGE_LISTEN": "127.0.0.1:1234", "REMOTE_STORAGE_STORAGE": "memory://?x=1"}
    assert parse([], env).listen == "127.0.0.1:1234"
    assert parse([], env).storage == "memory://?x=1"
    assert parse(["--listen", "127.0.0.1:99"], env).listen == "127.0.0.1:99"


def test_typed_values() -> None:
    settings = parse(
        ["--max-request-bytes", "1MiB", "--read-timeout", "1m30s", "--label-names", "legacy"],
        {"REMOTE_STORAGE_READ_SAMPLE_LIMIT": "0"},
    )
    assert settings.max_request_bytes == 1024 * 1024
    assert settings.read_timeout == 90.0
    assert settings.label_names is NameScheme.LEGACY
    assert settings.read_sample_limit == 0


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--listen", "nowhere"], {}, "--listen: invalid listen address"),
        ([], {"REMOTE_STORAGE_MAX_REQUEST_BYTES": "lots"}, "REMOTE_STORAGE_MAX_REQUEST_BYTES: invalid size"),
        (["--read-timeout", "soon"], {}, "--read-timeout: invalid duration"),
        (["--storage", "/var/lib/x.db"], {}, "--storage: '/var/lib/x.db' is not a URL"),
        (["--label-names", "ascii"], {}, "--label-names"),
        (["--max-request-bytes", "10"], {}, "below 1024"),
    ],
)
def test_bad_values_name_the_setting(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(argv, env)


def test_units() -> None:
    assert parse_size("512KiB") == 512 * 1024
    assert parse_size("1GB") == 10**9
    assert parse_duration("250ms") == 0.25
    assert parse_duration("2h") == 7200
    assert parse_duration("15") == 15


def test_write_limits_from_flags_and_environment() -> None:
    settings = parse(
        ["--max-labels-per-series", "10", "--future-grace-period", "1m", "--retention", "2h"],
        {"REMOTE_STORAGE_MAX_LABEL_VALUE_LENGTH": "100"},
    )
    limits = settings.write_limits
    assert limits.max_labels_per_series == 10
    assert limits.max_label_value_length == 100
    assert limits.future_grace_ms == 60_000
    assert limits.max_sample_age_ms == 7_200_000  # follows the retention unless set
    assert parse(["--retention", "2h", "--max-sample-age", "0"]).write_limits.max_sample_age_ms == 0
    assert parse(["--max-sample-age", "1d"]).write_limits.max_sample_age_ms == 86_400_000
    assert parse([]).write_limits.max_sample_age_ms == 0  # no retention: any age


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-labels-per-series", "-1"], "--max-labels-per-series: must be 0"),
        (["--max-active-series", "-5"], "--max-active-series: must be 0"),
        (["--max-label-name-length", "4"], "at least 8, the length of __name__"),
        (["--active-series-window", "0"], "--active-series-window: must be positive"),
        (["--max-sample-age", "soon"], "--max-sample-age: invalid duration"),
    ],
)
def test_bad_limits_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(argv)


def test_a_port_alone_is_a_listen_address_on_all_interfaces() -> None:
    assert parse(["--listen", "9201"]).address == ("0.0.0.0", 9201)
    assert parse(["--listen", ":9201"]).address == ("0.0.0.0", 9201)
    assert parse_listen(9464) == ("0.0.0.0", 9464)
    with pytest.raises(TypeError, match="HOST:PORT string or a port number"):
        parse_listen(True)
